# bash completion for lapis                                -*- shell-script -*-
#
# Commands and options come from lapis's own help ('lapis help', 'lapis CMD
# --help'), so this file never drifts from the binary. Package names come
# from the metadata cache (-C: completion never downloads), installed names
# from the rpmdb, history ids from the history database; the words the user
# typed that choose the system (--installroot, -c, --setopt, repo options)
# are passed along so completion looks at the same system the command will.

# Options whose value is the next word when written without '='.
_lapis_argopts='-c|--config|--installroot|--releasever|--setopt|--repofrompath|--comment|--enablerepo|--enable-repo|--disablerepo|--disable-repo|--repo|--repoid|-x|--exclude|--excludepkgs|--forcearch|--downloaddir|--destdir|--color|--queryformat|--qf|--whatprovides|--whatrequires|--whatdepends|--whatrecommends|--whatsuggests|--whatsupplements|--whatenhances|--whatconflicts|--whatobsoletes|-f|--file|--latest-limit|--providers-of|--arch'

# Run lapis on the system the command line names, from the cache, quietly,
# never waiting for a lock.
_lapis_run()
{
    local w sys=() i=1
    while ((i < cword)); do
        w=${words[i]}
        case $w in
            -c | --config | --installroot | --releasever | --setopt | --repofrompath | --enablerepo | --enable-repo | --disablerepo | --disable-repo | --repo | --repoid | --forcearch)
                sys+=("$w" "${words[i + 1]}")
                ((i++))
                ;;
            --config=* | --installroot=* | --releasever=* | --setopt=* | --repofrompath=* | --enablerepo=* | --enable-repo=* | --disablerepo=* | --disable-repo=* | --repo=* | --repoid=* | --forcearch=* | --nogpgcheck | --no-gpgchecks)
                sys+=("$w")
                ;;
        esac
        ((i++))
    done
    # A Tab press must not wait while another run refreshes the metadata.
    "${words[0]}" "${sys[@]}" -C -q --setopt=lock_timeout=0 "$@" 2>/dev/null
}

# The commands and aliases 'lapis help' lists.
_lapis_commands()
{
    "${words[0]}" help 2>/dev/null | awk '
        /^Commands:/ { s = 1; next } /^Aliases:/ { s = 2; next } /^$/ { s = 0 }
        s == 1 && /^  [a-z]/ { print $1 }
        s == 2 { for (i = 1; i <= NF; i++) { sub(/=.*/, "", $i); print $i } }'
}

# Every --option a help text names ('lapis --help' or 'lapis CMD --help').
_lapis_options()
{
    "${words[0]}" "$@" --help 2>/dev/null | awk -v cmd="$*" '
        $0 ~ /^Options:/ { s = 1; next } /^Global options:/ { s = 0 }
        (s || cmd == "") && /^  -/ {
            for (i = 1; i <= NF; i++)
                while (match($i, /--[a-z][a-z0-9-]*/)) {
                    print substr($i, RSTART, RLENGTH); $i = substr($i, RSTART + RLENGTH)
                }
        }' | sort -u
}

# Package names: 'installed' from the rpmdb, 'available' from the cache.
_lapis_packages()
{
    _lapis_run repoquery "--$1" "$cur*" | sed 's/-[^-]*-[^-]*$//' | sort -u
}

_lapis_history_ids()
{
    _lapis_run history list | awk '$1 ~ /^[0-9]+$/ { print $1 }'
}

_lapis()
{
    local cur prev words cword split
    if type _init_completion &>/dev/null; then
        _init_completion -s || return
    else
        words=("${COMP_WORDS[@]}") cword=$COMP_CWORD cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    fi

    case $prev in
        --installroot | --downloaddir | --destdir)
            COMPREPLY=($(compgen -d -- "$cur"))
            return
            ;;
        -c | --config)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        --color)
            COMPREPLY=($(compgen -W "auto always never" -- "$cur"))
            return
            ;;
    esac
    # Without bash-completion's -s, "--color=al" is one word.
    if [[ $cur == --color=* ]]; then
        COMPREPLY=($(compgen -P --color= -W "auto always never" -- "${cur#--color=}"))
        return
    fi

    # The command: the first word that is neither an option nor an option's value.
    local i cmd="" sub="" ci=0
    for ((i = 1; i < cword; i++)); do
        if [[ -z $cmd ]]; then
            [[ ${words[i]} == @($_lapis_argopts) ]] && { ((i++)); continue; }
            [[ ${words[i]} == -* ]] && continue
            cmd=${words[i]} ci=$i
        elif [[ ${words[i]} != -* ]]; then
            sub=${words[i]}
            break
        fi
    done

    if [[ $cur == -* ]]; then
        # shellcheck disable=SC2086  # no command: no argument, the global options
        COMPREPLY=($(compgen -W "$(_lapis_options $cmd)" -- "$cur"))
        return
    fi
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$(_lapis_commands)" -- "$cur"))
        return
    fi

    local first=$((cword == ci + 1))
    case $cmd in
        install | in | localinstall | download | info | if | list | ls | repoquery | rq)
            if [[ $cur == */* ]]; then
                _filedir rpm 2>/dev/null || COMPREPLY=($(compgen -f -- "$cur"))
            else
                COMPREPLY=($(_lapis_packages available))
            fi
            ;;
        remove | rm | erase | uninstall | reinstall | rei | upgrade | up | update | upgrade-minimal | up-min | update-minimal | downgrade | dg | distro-sync | dsync | distrosync | autoremove)
            COMPREPLY=($(_lapis_packages installed))
            ;;
        mark)
            ((first)) && COMPREPLY=($(compgen -W "install remove" -- "$cur")) || COMPREPLY=($(_lapis_packages installed))
            ;;
        history | hist)
            if ((first)); then
                COMPREPLY=($(compgen -W "list info undo redo rollback" -- "$cur"))
            elif [[ $sub == @(info|undo|redo|rollback) ]]; then
                COMPREPLY=($(compgen -W "$(_lapis_history_ids) last" -- "$cur"))
            fi
            ;;
        group | grp | groups)
            ((first)) && COMPREPLY=($(compgen -W "list info install remove upgrade" -- "$cur"))
            ;;
        environment)
            ((first)) && COMPREPLY=($(compgen -W "list info" -- "$cur"))
            ;;
        repo)
            ((first)) && COMPREPLY=($(compgen -W "list info" -- "$cur"))
            ;;
        updateinfo | upif | advisory)
            ((first)) && COMPREPLY=($(compgen -W "summary list info" -- "$cur"))
            ;;
        clean)
            ((first)) && COMPREPLY=($(compgen -W "all metadata packages" -- "$cur"))
            ;;
        offline)
            # _execute is the unit's, not offered (dnf5 hides it too)
            ((first)) && COMPREPLY=($(compgen -W "status reboot clean" -- "$cur"))
            ;;
        image)
            ((first)) && COMPREPLY=($(compgen -W "build lock inspect" -- "$cur"))
            ;;
        help)
            ((first)) && COMPREPLY=($(compgen -W "$(_lapis_commands)" -- "$cur"))
            ;;
    esac
} &&
    complete -F _lapis lapis

# ex: filetype=sh

#!/usr/bin/python3
"""Build a signed rpm-md repository of REAL RPMs: the Debian 12 dependency
closure of `nginx openssh-server python3 systemd`.

Usage: bench/gen-closure.py OUTDIR

Reads Debian's package index (/var/lib/apt/lists/*_Packages.lz4, through
`apt-helper cat-file`, with the parser of gen-debian-repo.py), and computes
the closure of ROOTS over Depends + Pre-Depends, taking the first
alternative of every `a | b` group. A virtual name is resolved to one of its
providers: one already in the closure if there is one, else the
alphabetically first. About 110 packages.

Each package becomes an RPM built with rpmbuild:
  Name      the Debian name
  Epoch     the Debian epoch (when not 0)
  Version   the Debian upstream version, '-' ':' '~' replaced by '_'
  Release   1
  Arch      x86_64 (amd64) or noarch (all)
  Requires  every closure dependency, unversioned (the virtual name when the
            dependency was virtual)
  Provides  the virtual names resolved to this package
  Payload   /usr/share/NAME/{README,data.bin,extra.dat} and /usr/bin/NAME
            (x86_64) or /usr/lib/NAME/NAME.py (noarch); total size
            Installed-Size / 8 (min 4 KiB, max 4 MiB), incompressible bytes
            from a PRNG seeded with the name: deterministic.
  No scriptlets, AutoReqProv: no, no build-id links, zstd payload.

All RPMs are signed (rpmsign) with a throwaway RSA key generated in
OUTDIR/gnupg, and the repository metadata (createrepo_c) is signed with a
detached armored signature repodata/repomd.xml.asc.

Output:
  OUTDIR/repo/Packages/*.rpm
  OUTDIR/repo/repodata/{repomd.xml,repomd.xml.asc,...}
  OUTDIR/RPM-GPG-KEY-bench    the public key (armored)
  OUTDIR/closure.txt          the package names, one a line, sorted
  OUTDIR/gnupg/               the GnuPG home holding the secret key
  OUTDIR/.stamp               inputs hash: a rerun with the same inputs is
                              a no-op (delete it, or BENCH_REGEN=1, to rebuild)

Builds run in parallel (one rpmbuild per CPU). Timestamps in the RPMs come
from SOURCE_DATE_EPOCH if set, else the newest mtime of the input files.
"""

import concurrent.futures
import glob
import hashlib
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOTS = ["nginx", "openssh-server", "python3", "systemd"]
SCALE = 8                    # payload = Installed-Size / SCALE
MIN_BYTES = 4 * 1024
MAX_BYTES = 4 * 1024 * 1024
KEY_UID = "Lapis Bench <bench@lapis.invalid>"


def log(msg):
    sys.stderr.write("gen-closure: %s\n" % msg)
    sys.stderr.flush()


def load_gdr():
    spec = importlib.util.spec_from_file_location(
        "gen_debian_repo", os.path.join(HERE, "gen-debian-repo.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(cmd, env=None, input=None):
    p = subprocess.run(cmd, env=env, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.stderr.write(p.stderr.decode("utf-8", "replace"))
        raise SystemExit("gen-closure: command failed (exit %d): %s"
                         % (p.returncode, " ".join(cmd[:6])))
    return p.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Closure


def read_best(gdr, inputs):
    best = {}
    for path in inputs:
        for st in gdr.parse_stanzas(gdr.read_index(path)):
            if st.get("Architecture") not in gdr.ARCH_MAP:
                continue
            name = st["Package"]
            cur = best.get(name)
            if cur is None or gdr.debver_cmp(st["Version"], cur["Version"]) > 0:
                best[name] = st
    return best


def closure(gdr, best):
    """-> (ordered list of names, {name: [required names]},
           {name: set of virtual names it must provide})"""
    providers = {}
    for name in sorted(best):
        for alts in gdr.parse_relations(best[name].get("Provides", ""), False):
            for pname, _, _ in alts:
                if pname != name:
                    providers.setdefault(pname, []).append(name)
    requires, virtual = {}, {}
    queue = list(ROOTS)
    seen = set(ROOTS)
    i = 0
    while i < len(queue):
        name = queue[i]
        i += 1
        deps = []
        st = best[name]
        for field in ("Pre-Depends", "Depends"):
            # keep_foreign=False: a group naming only other architectures
            # (none in this closure) is dropped.
            for alts in gdr.parse_relations(st.get(field, ""), False):
                dep = alts[0][0]
                if dep in best:
                    target = dep
                else:
                    cands = providers.get(dep)
                    if not cands:
                        raise SystemExit("gen-closure: %s: nothing provides %s"
                                         % (name, dep))
                    inside = [c for c in cands if c in seen]
                    target = inside[0] if inside else cands[0]
                    virtual.setdefault(target, set()).add(dep)
                if dep != name and dep not in deps:
                    deps.append(dep)
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        requires[name] = deps
    return queue, requires, virtual


def rpm_version(gdr, debver):
    epoch, up, _rev = gdr.split_debver(debver)
    v = up
    for c in "-:~":
        v = v.replace(c, "_")
    return epoch, v


# ---------------------------------------------------------------------------
# Packages


def payload_files(name, arch, total):
    """[(path, size, mode)] summing to total bytes."""
    main = "/usr/bin/%s" % name if arch == "x86_64" else "/usr/lib/%s/%s.py" % (name, name)
    sizes = [total * 45 // 100, total * 30 // 100, total * 20 // 100]
    sizes.append(total - sum(sizes))
    return [(main, sizes[0], 0o755),
            ("/usr/share/%s/data.bin" % name, sizes[1], 0o644),
            ("/usr/share/%s/extra.dat" % name, sizes[2], 0o644),
            ("/usr/share/%s/README" % name, sizes[3], 0o644)]


SPEC = """\
%%define _build_id_links none
%%define _binary_payload w19.zstdio
%%define __os_install_post %%{nil}
%%define debug_package %%{nil}
Name: %(name)s
%(epoch)sVersion: %(version)s
Release: 1
Summary: Benchmark stand-in for Debian's %(name)s %(debver)s
License: Debian
URL: https://packages.debian.org/bookworm/%(name)s
%(buildarch)sAutoReqProv: no
%(requires)s%(provides)s
%%description
Benchmark stand-in for Debian's %(name)s %(debver)s (Installed-Size %(isize)s KiB):
%(nbytes)d bytes of incompressible data, no scriptlets.

%%install
cp -a %(stage)s/. %%{buildroot}/

%%files
%%defattr(-,root,root,-)
%(files)s
"""


def build_one(ctx, name):
    gdr, best, requires, virtual, work, rpmdir, env = ctx
    st = best[name]
    arch = gdr.ARCH_MAP[st["Architecture"]]
    epoch, version = rpm_version(gdr, st["Version"])
    try:
        isize = int(st.get("Installed-Size", "0"))
    except ValueError:
        isize = 0
    total = min(max(isize * 1024 // SCALE, MIN_BYTES), MAX_BYTES)

    pdir = os.path.join(work, name)
    shutil.rmtree(pdir, ignore_errors=True)
    stage = os.path.join(pdir, "stage")
    rng = random.Random("lapis-bench:" + name)
    files = payload_files(name, arch, total)
    dirs = set()
    for path, size, mode in files:
        full = stage + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(rng.randbytes(size))
        os.chmod(full, mode)
        d = os.path.dirname(path)
        if d not in ("/usr/bin",):
            dirs.add(d)
    flines = ["%%dir %s" % d for d in sorted(dirs)] + [p for p, _, _ in files]

    spec = SPEC % {
        "name": name,
        "epoch": "Epoch: %s\n" % epoch if epoch != "0" else "",
        "version": version,
        "debver": st["Version"].replace("%", "%%"),
        "buildarch": "BuildArch: noarch\n" if arch == "noarch" else "",
        "requires": "".join("Requires: %s\n" % d for d in requires[name]),
        "provides": "".join("Provides: %s\n" % v for v in sorted(virtual.get(name, ()))),
        "isize": isize,
        "nbytes": total,
        "stage": stage,
        "files": "\n".join(flines),
    }
    specfile = os.path.join(pdir, name + ".spec")
    with open(specfile, "w") as f:
        f.write(spec)
    topdir = os.path.join(pdir, "top")
    run(["rpmbuild", "-bb", "--quiet",
         "--target", arch,
         "--define", "_topdir " + topdir,
         "--define", "_rpmdir " + rpmdir,
         "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
         "--define", "_buildhost lapis-bench",
         "--define", "packager Lapis Bench <bench@lapis.invalid>",
         "--define", "vendor Lapis Bench",
         "--define", "use_source_date_epoch_as_buildtime 1",
         "--define", "clamp_mtime_to_source_date_epoch 1",
         specfile], env=env)
    rpm = os.path.join(rpmdir, "%s-%s-1.%s.rpm" % (name, version, arch))
    if not os.path.exists(rpm):
        raise SystemExit("gen-closure: %s did not produce %s" % (name, rpm))
    shutil.rmtree(pdir)
    return rpm


# ---------------------------------------------------------------------------


def input_hash(inputs):
    h = hashlib.sha256()
    for p in (os.path.abspath(__file__), os.path.join(HERE, "gen-debian-repo.py")):
        with open(p, "rb") as f:
            h.update(f.read())
    for p in inputs:
        s = os.stat(p)
        h.update(("%s %d %d\n" % (p, s.st_size, int(s.st_mtime))).encode())
    return h.hexdigest()


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        return 2
    outdir = os.path.abspath(argv[1])
    gdr = load_gdr()
    inputs = sorted(glob.glob(gdr.DEFAULT_GLOB))
    if not inputs:
        log("no input (%s); run apt-get update" % gdr.DEFAULT_GLOB)
        return 1
    for tool in ("rpmbuild", "rpmsign", "createrepo_c", "gpg"):
        if not shutil.which(tool):
            log("%s is missing (apt-get install rpm createrepo-c gnupg)" % tool)
            return 1

    stampfile = os.path.join(outdir, ".stamp")
    digest = input_hash(inputs)
    if os.environ.get("BENCH_REGEN") != "1":
        try:
            with open(stampfile) as f:
                stamp = json.load(f)
            if (stamp.get("hash") == digest and os.path.exists(
                    os.path.join(outdir, "repo", "repodata", "repomd.xml.asc"))):
                log("%s is up to date (%d packages)" % (outdir, stamp.get("packages", 0)))
                return 0
        except (OSError, ValueError):
            pass

    t0 = time.time()
    sde = os.environ.get("SOURCE_DATE_EPOCH") or str(int(max(os.stat(p).st_mtime
                                                             for p in inputs)))
    best = read_best(gdr, inputs)
    names, requires, virtual = closure(gdr, best)
    log("closure of %s: %d packages (%.1fs)" % (" ".join(ROOTS), len(names), time.time() - t0))

    # Start from scratch (the stamp goes first: an interrupted build is redone).
    if os.path.exists(stampfile):
        os.unlink(stampfile)
    for sub in ("repo", "gnupg", "work"):
        shutil.rmtree(os.path.join(outdir, sub), ignore_errors=True)
    work = os.path.join(outdir, "work")
    rpmdir = os.path.join(outdir, "repo", "Packages")
    gnupg = os.path.join(outdir, "gnupg")
    os.makedirs(work)
    os.makedirs(rpmdir)
    os.makedirs(gnupg, mode=0o700)
    env = dict(os.environ, GNUPGHOME=gnupg, LC_ALL="C", SOURCE_DATE_EPOCH=sde)

    try:
        # Key (RSA-2048: well under a second to generate).
        run(["gpg", "--batch", "--gen-key"], env=env, input=(
            "%no-protection\nKey-Type: RSA\nKey-Length: 2048\nKey-Usage: sign\n"
            "Name-Real: Lapis Bench\nName-Email: bench@lapis.invalid\n"
            "Expire-Date: 0\n%commit\n").encode())
        out = run(["gpg", "--batch", "--with-colons", "--fingerprint", "=" + KEY_UID], env=env)
        fpr = [l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:")][0]
        key = run(["gpg", "--batch", "--armor", "--export", fpr], env=env)
        with open(os.path.join(outdir, "RPM-GPG-KEY-bench"), "w") as f:
            f.write(key)

        # Build.
        t1 = time.time()
        jobs = max(1, os.cpu_count() or 1)
        ctx = (gdr, best, requires, virtual, work, rpmdir, env)
        with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
            rpms = list(ex.map(lambda n: build_one(ctx, n), names))
        log("built %d RPMs with %d jobs (%.1fs)" % (len(rpms), jobs, time.time() - t1))

        # Sign, in one rpmsign per CPU.
        t1 = time.time()
        batches = [rpms[i::jobs] for i in range(jobs)]
        sign = ["rpmsign", "--define", "__gpg /usr/bin/gpg",
                "--define", "_gpg_name " + fpr,
                "--define", "_gpg_path " + gnupg,
                "--define", "_gpg_digest_algo sha256", "--addsign"]
        with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
            list(ex.map(lambda b: run(sign + b, env=env), [b for b in batches if b]))
        log("signed %d RPMs (%.1fs)" % (len(rpms), time.time() - t1))

        # Repository.
        repo = os.path.join(outdir, "repo")
        run(["createrepo_c", "--quiet", "--no-database", "--revision", sde, repo], env=env)
        run(["gpg", "--batch", "--yes", "--local-user", fpr, "--digest-algo", "SHA256",
             "--armor", "--detach-sign", "--output",
             os.path.join(repo, "repodata", "repomd.xml.asc"),
             os.path.join(repo, "repodata", "repomd.xml")], env=env)
    finally:
        subprocess.run(["gpgconf", "--homedir", gnupg, "--kill", "all"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(work, ignore_errors=True)

    with open(os.path.join(outdir, "closure.txt"), "w") as f:
        f.write("".join(n + "\n" for n in sorted(names)))
    total = sum(os.path.getsize(p) for p in rpms)
    with open(stampfile + ".tmp", "w") as f:
        json.dump({"hash": digest, "packages": len(names), "rpm_bytes": total,
                   "build_s": round(time.time() - t0, 1), "fingerprint": fpr}, f)
        f.write("\n")
    os.rename(stampfile + ".tmp", stampfile)
    log("%d packages, %.1f MB of RPMs, %.1fs -> %s"
        % (len(names), total / 1e6, time.time() - t0, outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

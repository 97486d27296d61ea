/*
 * Test driver for the finalize stage (tests/functional/image/test_finalize.py):
 * fills a config from arguments and runs lapis_image_finalize on ROOT, so the
 * stage is tested on a root made by `lapis --installroot` before the
 * orchestrator exists. Prints the removed setuid paths, one a line.
 *
 *   finalize_driver ROOT EPOCH [--name N] [--version V] [--arch A] [--kver K]
 *     [--hostname H] [--timezone TZ] [--no-hardening] [--selinux MODE]
 *     [--group NAME[:GID]] [--user NAME[:UID]] [--hash NAME=HASH]
 *     [--key NAME=LINE] [--member NAME=GROUP] [--enable U] [--disable U]
 *     [--sysctl K=V] [--cmdline ARG] [--file DEST:MODE:CONTENT] [--dir DEST:MODE]
 *     [--keep WHAT] [--allow PATH]
 *   finalize_driver ROOT EPOCH --config FILE.yaml [--arch A] [--kver K]
 *     (the config read by lapis_image_config_load; the other options unused)
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "basic/alloc.h"
#include "basic/strv.h"
#include "image/image.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* A test driver fills a config and build object by hand and exits without
 * taking them apart; what it leaks is its own scaffolding. The stages' own
 * frees are checked through `lapis image build` (tests/functional/image). */
#define DRIVER_NO_LEAK_CHECK() __lsan_disable()
#else
#define DRIVER_NO_LEAK_CHECK() ((void)0)
#endif

static struct lapis_image_config c;

static struct lapis_image_user *user(const char *name)
{
    for (size_t i = 0; i < c.nusers; i++)
        if (!strcmp(c.users[i].name, name))
            return &c.users[i];
    fprintf(stderr, "no --user %s before\n", name);
    exit(2);
}

static char *split(char *s, int sep)
{
    char *p = strchr(s, sep);
    if (!p)
        return NULL;
    *p = '\0';
    return p + 1;
}

static void add_user(char *arg)
{
    char *uid = split(arg, ':');
    c.users = xrealloc(c.users, (c.nusers + 1) * sizeof(*c.users));
    c.users[c.nusers++] = (struct lapis_image_user){ .name = xstrdup(arg),
                                                     .uid = uid ? atol(uid) : -1 };
}

static void add_group(char *arg)
{
    char *gid = split(arg, ':');
    c.groups = xrealloc(c.groups, (c.ngroups + 1) * sizeof(*c.groups));
    c.groups[c.ngroups++] = (struct lapis_image_group){ .name = xstrdup(arg),
                                                        .gid = gid ? atol(gid) : -1 };
}

static void add_file(char *arg, bool dir)
{
    char *mode = split(arg, ':');
    char *content = mode ? split(mode, ':') : NULL;
    c.files = xrealloc(c.files, (c.nfiles + 1) * sizeof(*c.files));
    c.files[c.nfiles++] = (struct lapis_image_file){
        .destination = xstrdup(arg), .content = content ? xstrdup(content) : NULL,
        .mode = (mode_t)strtol(mode ? mode : (dir ? "755" : "644"), NULL, 8), .is_dir = dir };
}

static void add_kv(struct lapis_image_kv **v, size_t *n, char *arg)
{
    char *val = split(arg, '=');
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = (struct lapis_image_kv){ xstrdup(arg), xstrdup(val ? val : "") };
}

static void user_opt(int opt, char *arg)
{
    char *val = split(arg, '=');
    struct lapis_image_user *u = user(arg);
    if (opt == 'H')
        u->password_hash = xstrdup(val);
    else if (opt == 'K')
        strv_push(&u->ssh_keys, xstrdup(val));
    else
        strv_push(&u->groups, xstrdup(val));
}

int main(int argc, char **argv)
{
    DRIVER_NO_LEAK_CHECK();
    static const struct option opts[] = {
        { "name", 1, 0, 'n' }, { "version", 1, 0, 'v' }, { "arch", 1, 0, 'a' },
        { "kver", 1, 0, 'k' }, { "hostname", 1, 0, 'h' }, { "timezone", 1, 0, 't' },
        { "no-hardening", 0, 0, 'N' }, { "selinux", 1, 0, 's' }, { "group", 1, 0, 'g' },
        { "user", 1, 0, 'u' }, { "hash", 1, 0, 'H' }, { "key", 1, 0, 'K' },
        { "member", 1, 0, 'M' }, { "enable", 1, 0, 'e' }, { "disable", 1, 0, 'd' },
        { "sysctl", 1, 0, 'S' }, { "cmdline", 1, 0, 'c' }, { "file", 1, 0, 'f' },
        { "dir", 1, 0, 'D' }, { "keep", 1, 0, 'p' }, { "allow", 1, 0, 'A' },
        { "config", 1, 0, 'C' }, { 0 },
    };
    struct utsname u;
    struct lapis_image_build b = { .conf = &c, .arch = uname(&u) == 0 ? u.machine : "x86_64" };
    struct lapis_image_config *loaded = NULL;
    const char *config = NULL;
    int opt;

    c.hardening = true;
    c.name = "testimage";
    c.version = "1.0";
    memset(c.sha256, 0xab, sizeof(c.sha256));
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'n': c.name = optarg; break;
        case 'v': c.version = optarg; break;
        case 'a': b.arch = optarg; break;
        case 'k': b.kver = optarg; break;
        case 'h': c.hostname = optarg; break;
        case 't': c.timezone = optarg; break;
        case 'N': c.hardening = false; break;
        case 's': c.selinux_mode = optarg; break;
        case 'g': add_group(optarg); break;
        case 'u': add_user(optarg); break;
        case 'H': case 'K': case 'M': user_opt(opt, optarg); break;
        case 'e': strv_push(&c.services_enable, xstrdup(optarg)); break;
        case 'd': strv_push(&c.services_disable, xstrdup(optarg)); break;
        case 'S': add_kv(&c.sysctl, &c.nsysctl, optarg); break;
        case 'c': strv_push(&c.kernel_cmdline, xstrdup(optarg)); break;
        case 'f': add_file(optarg, false); break;
        case 'D': add_file(optarg, true); break;
        case 'p': strv_push(&c.keep, xstrdup(optarg)); break;
        case 'A': strv_push(&c.setuid_allow, xstrdup(optarg)); break;
        case 'C': config = optarg; break;
        default: return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: finalize_driver ROOT EPOCH [options]\n");
        return 2;
    }
    if (config && lapis_image_config_load(&b.diag, config, &loaded) < 0) {
        fprintf(stderr, "finalize_driver: %s\n", lapis_diag_error(&b.diag));
        return 1;
    }
    if (loaded)
        b.conf = loaded;
    b.rootdir = argv[optind];
    b.epoch = atoll(argv[optind + 1]);
    if (lapis_image_finalize(&b) < 0) {
        fprintf(stderr, "finalize_driver: %s\n", lapis_diag_error(&b.diag));
        return 1;
    }
    for (char **p = b.report.setuid_removed; p && *p; p++)
        printf("%s\n", *p);
    lapis_image_config_free(loaded);
    return 0;
}

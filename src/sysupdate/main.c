/*
 * lapis-sysupdate: the immutable host's update agent (docs/sysupdate.md).
 * One verb table; options are parsed once into struct su_opts and the
 * library does the work; the program prints (text, or --json) and maps an
 * error to one line on stderr and exit status 1.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/ini.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "lapis/common.h"
#include "sysupdate/sysupdate.h"

#define KEYS_DIR "/usr/lib/lapis-sysupdate/keys.d"
/* The vendor's settings ship in /usr (so a version defines them); /etc overrides. */
#define CONF_VENDOR "/usr/lib/lapis-sysupdate/sysupdate.conf"
#define CONF_ADMIN "/etc/lapis-sysupdate.conf"
#define STATE_DIR "/var/lib/lapis-sysupdate"

struct args {
    struct su_opts o;
    struct su_bundle_opts b;
    bool json;
    long long issued, valid;
    char **pos;                 /* positional arguments after the verb */
    int npos;
    const char *config;         /* --config: only this file */
    char *conf_url;             /* url= from the configuration */
    const char *tries;          /* --tries */
    int conf_tries;             /* tries= from the configuration, 0: none */
    int conf_bad_line;          /* the line of a tries= out of range */
};

static void json_str(const char *s)
{
    if (!s) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static int fail(const struct args *a, struct lapis_diag *d)
{
    fprintf(stderr, "lapis-sysupdate: %s\n", lapis_diag_error(d));
    if (a->json) {
        fputs("{\"error\": ", stdout);
        json_str(lapis_diag_error(d));
        fputs("}\n", stdout);
    }
    return 1;
}

static int need_server(struct args *a, struct lapis_diag *d)
{
    if (!a->o.url)
        return lapis_err(d, LAPIS_E_USAGE, "--url URL (the update server) is required");
    return 0;
}

/* ---- verbs ---- */

static int verb_check(struct args *a, struct lapis_diag *d)
{
    struct su_check c;
    if (need_server(a, d) < 0 || su_check(d, &a->o, &c) < 0)
        return fail(a, d);
    if (a->json) {
        fputs("{\"current\": ", stdout), json_str(c.current);
        fputs(", \"available\": ", stdout), json_str(c.available);
        fputs(", \"reason\": ", stdout), json_str(c.reason);
        fputs("}\n", stdout);
    } else if (c.available)
        printf("%s is available (running %s)\n", c.available, c.current);
    else
        printf("no update: %s\n", c.reason);
    su_check_clear(&c);
    return 0;
}

static int verb_update(struct args *a, struct lapis_diag *d)
{
    _cleanup_free_ char *v = NULL, *why = NULL;
    int slot = 0;
    if (need_server(a, d) < 0 || su_update(d, &a->o, &v, &slot, &why) < 0)
        return fail(a, d);
    if (a->json) {
        printf("{\"staged\": %s, \"version\": ", v ? "true" : "false");
        json_str(v);
        printf(", \"slot\": \"%c\", \"reason\": ", 'a' + slot);
        json_str(why);
        fputs("}\n", stdout);
    } else if (v)
        printf("%s staged in slot %c; it boots next (reboot required)\n", v, 'a' + slot);
    else
        printf("no update: %s\n", why);
    return 0;
}

/* The slot's boot entry and the tries systemd-boot has left for it (null:
 * not counted, i.e. blessed, or no entry); names: the ESP's, may be NULL. */
static void status_uki(const struct su_slot *s, char *const *names)
{
    const char *uki = s->version ? su_uki_find(names, s->version) : NULL;
    int tries = uki ? su_uki_tries_left(uki) : -1;
    fputs(", \"uki\": ", stdout);
    json_str(uki);
    if (tries >= 0)
        printf(", \"tries_left\": %d", tries);
    else
        fputs(", \"tries_left\": null", stdout);
}

static void status_json(const struct su_state *s, char *const *names)
{
    printf("{\"booted\": \"%c\", \"slots\": [", 'a' + s->booted);
    for (int i = 0; i < 2; i++) {
        printf("%s{\"slot\": \"%c\", \"version\": ", i ? ", " : "", 'a' + i);
        json_str(s->slot[i].version);
        printf(", \"status\": \"%s\", \"booted\": %s, \"verity_root_hash\": ",
               su_status_names[s->slot[i].status], i == s->booted ? "true" : "false");
        json_str(s->slot[i].roothash[0] ? s->slot[i].roothash : NULL);
        status_uki(&s->slot[i], names);
        putchar('}');
    }
    fputs("], \"failed\": [", stdout);
    for (size_t i = 0; s->failed && s->failed[i]; i++)
        fputs(i ? ", " : "", stdout), json_str(s->failed[i]);
    fputs("], \"rolled_back\": ", stdout);
    json_str(s->rolled_back);
    fputs(", \"progress\": ", stdout);
    if (s->prog_slot >= 0)
        printf("{\"slot\": \"%c\", \"payload\": \"%s\", \"frames_done\": %zu}", 'a' + s->prog_slot,
               su_payload_names[s->prog_payload], s->prog_chunk);
    else
        fputs("null", stdout);
    fputs("}\n", stdout);
}

static int verb_status(struct args *a, struct lapis_diag *d)
{
    struct su_state s;
    if (su_state_load(d, a->o.state_dir, &s) < 0)
        return fail(a, d);
    char **names = su_esp_names(&a->o);   /* best effort: status still works without the ESP */
    if (a->json)
        status_json(&s, names);
    else
        for (int i = 0; i < 2; i++) {
            const char *uki = s.slot[i].version ? su_uki_find(names, s.slot[i].version) : NULL;
            printf("slot %c: %s %s%s%s%s\n", 'a' + i, s.slot[i].version ? s.slot[i].version : "-",
                   su_status_names[s.slot[i].status], i == s.booted ? " (booted)" : "",
                   uki ? ", " : "", uki ? uki : "");
        }
    lapis_strv_free(names);
    su_state_clear(&s);
    return 0;
}

static int verb_init(struct args *a, struct lapis_diag *d)
{
    if (!a->o.image || !a->b.version) {
        lapis_err(d, LAPIS_E_USAGE, "init needs --image DISK and --version V");
        return fail(a, d);
    }
    if (su_init(d, &a->o, a->b.version) < 0)
        return fail(a, d);
    printf("slot a holds %s (state in %s)\n", a->b.version, a->o.state_dir);
    return 0;
}

static int verb_bundle(struct args *a, struct lapis_diag *d)
{
    struct su_bundle_opts *b = &a->b;
    char root[SU_HEX];
    b->arch = a->o.arch;
    if (!b->key || !b->version || !b->usr || !b->uki || !b->outdir) {
        lapis_err(d, LAPIS_E_USAGE, "bundle needs --key, --version, --usr, --uki and -o DIR");
        return fail(a, d);
    }
    if (su_bundle_write(d, b, root) < 0)
        return fail(a, d);
    printf("%s/%s: version %s, verity root hash %s\n", b->outdir, b->version, b->version, root);
    return 0;
}

static int verb_index(struct args *a, struct lapis_diag *d)
{
    if (!a->b.key || a->npos != 1) {
        lapis_err(d, LAPIS_E_USAGE, "usage: lapis-sysupdate index --key KEY [--issued T] [--valid S] DIR");
        return fail(a, d);
    }
    if (su_bundle_index(d, a->b.key, a->pos[0], a->issued, a->valid) < 0)
        return fail(a, d);
    printf("%s/index: issued %lld, expires %lld\n", a->pos[0], a->issued, a->issued + a->valid);
    return 0;
}

static int verb_mark(struct args *a, struct lapis_diag *d, bool good)
{
    _cleanup_free_ char *v = NULL;
    if (good ? su_mark_good(d, &a->o, &v) < 0 : su_mark_bad(d, &a->o, &v) < 0)
        return fail(a, d);
    if (a->json) {
        printf("{\"marked\": \"%s\", \"version\": ", good ? "good" : "bad");
        json_str(v);
        fputs("}\n", stdout);
    } else
        printf("%s marked %s\n", v ? v : "-", good ? "good" : "bad (not retried until a newer version)");
    return 0;
}

static int verb_mark_good(struct args *a, struct lapis_diag *d) { return verb_mark(a, d, true); }
static int verb_mark_bad(struct args *a, struct lapis_diag *d) { return verb_mark(a, d, false); }

static int verb_cleanup(struct args *a, struct lapis_diag *d)
{
    char **removed = NULL;
    if (su_cleanup(d, &a->o, &removed) < 0)
        return fail(a, d);
    if (a->json)
        fputs("{\"removed\": [", stdout);
    for (size_t i = 0; removed && removed[i]; i++) {
        if (a->json)
            fputs(i ? ", " : "", stdout), json_str(removed[i]);
        else
            printf("removed %s\n", removed[i]);
    }
    if (a->json)
        fputs("]}\n", stdout);
    lapis_strv_free(removed);
    return 0;
}

static int verb_boot(struct args *a, struct lapis_diag *d)
{
    struct su_boot b;
    _cleanup_free_ char *proc = path_in_root(a->o.root, "/proc/cmdline");
    const char *cmdline = a->npos == 1 ? a->pos[0] : proc;
    if (a->npos > 1) {
        lapis_err(d, LAPIS_E_USAGE, "usage: lapis-sysupdate boot [CMDLINE-FILE]");
        return fail(a, d);
    }
    if (su_boot(d, &a->o, cmdline, &b) < 0)
        return fail(a, d);
    if (a->json) {
        printf("{\"booted\": \"%c\", \"rolled_back\": ", 'a' + b.booted);
        json_str(b.rolled_back);
        fputs("}\n", stdout);
    } else
        printf("booted slot %c%s%s\n", 'a' + b.booted, b.rolled_back ? "; rolled back from " : "",
               b.rolled_back ? b.rolled_back : "");
    free(b.rolled_back);
    return 0;
}

static int verb_rollback(struct args *a, struct lapis_diag *d)
{
    _cleanup_free_ char *from = NULL, *to = NULL;
    if (su_rollback(d, &a->o, &from, &to) < 0)
        return fail(a, d);
    if (a->json) {
        fputs("{\"from\": ", stdout), json_str(from);
        fputs(", \"to\": ", stdout), json_str(to);
        fputs("}\n", stdout);
    } else
        printf("%s boots next instead of %s (reboot required); %s is not reinstalled\n", to, from, from);
    return 0;
}

static int verb_health(struct args *a, struct lapis_diag *d)
{
    char *defaults_dirs[] = { SU_HEALTH_VENDOR, SU_HEALTH_ADMIN, NULL };
    struct su_check_result *res;
    size_t n;
    int r = su_health(d, a->npos ? a->pos : defaults_dirs, &res, &n);
    if (a->json) {
        printf("{\"healthy\": %s, \"checks\": [", r < 0 ? "false" : "true");
        for (size_t i = 0; i < n; i++) {
            printf("%s{\"name\": ", i ? ", " : "");
            json_str(res[i].name);
            printf(", \"status\": %d, \"output\": ", res[i].status);
            json_str(res[i].output);
            putchar('}');
        }
        fputs("]}\n", stdout);
    } else
        for (size_t i = 0; i < n; i++)
            printf("%s %s\n", res[i].status == 0 ? "ok  " : "FAIL", res[i].name);
    su_health_free(res, n);
    if (r < 0) {
        fprintf(stderr, "lapis-sysupdate: %s\n", lapis_diag_error(d));
        return 1;
    }
    return 0;
}

static const struct verb {
    const char *name;
    int (*fn)(struct args *, struct lapis_diag *);
} VERBS[] = {
    { "check", verb_check }, { "update", verb_update }, { "status", verb_status },
    { "init", verb_init }, { "mark-good", verb_mark_good }, { "mark-bad", verb_mark_bad },
    { "cleanup", verb_cleanup }, { "boot", verb_boot },
    { "rollback", verb_rollback }, { "health", verb_health }, { "bundle", verb_bundle }, { "index", verb_index },
};

/* ---- configuration: [sysupdate] url= tries= ---- */

/* A boot counter: 1..SU_UKI_TRIES_MAX (systemd-boot's +N of a new UKI), or -1. */
static int parse_tries(const char *v)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 1 || n > SU_UKI_TRIES_MAX)
        return -1;
    return (int)n;
}

static int conf_key(const char *section, const char *key, const char *value, int lineno, void *ud)
{
    struct args *a = ud;
    if (strcmp(section, "sysupdate") != 0)
        return -EINVAL;
    if (strcmp(key, "tries") == 0) {
        a->conf_tries = parse_tries(value);
        a->conf_bad_line = lineno;
        return a->conf_tries < 0 ? -ERANGE : 0;
    }
    if (strcmp(key, "url") != 0)
        return -EINVAL;
    free(a->conf_url);
    a->conf_url = xstrdup(value);
    return 0;
}

static int conf_load(struct args *a, struct lapis_diag *d, const char *path, bool must_exist)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int line = 0, r = read_file(path, 1 << 20, &text, &len);
    if (r == -ENOENT && !must_exist)
        return 0;
    if (r < 0)
        return lapis_err(d, r, "cannot read %s: %s", path, strerror(-r));
    r = lapis_ini_parse(text, len, conf_key, a, &line);
    if (r == -ERANGE)
        return lapis_err(d, LAPIS_E_CONFIG, "%s line %d: tries= must be a number from 1 to %d "
                         "(the boots a new version gets before systemd-boot falls back)",
                         path, a->conf_bad_line, SU_UKI_TRIES_MAX);
    if (r < 0)
        return lapis_err(d, LAPIS_E_CONFIG, "%s line %d: only [sysupdate] url= and tries= are known",
                         path, line);
    return 0;
}

/* --tries over tries= of the configuration over SU_UKI_TRIES. */
static int tries_apply(struct args *a, struct lapis_diag *d)
{
    a->o.tries = a->conf_tries > 0 ? a->conf_tries : SU_UKI_TRIES;
    if (!a->tries)
        return 0;
    a->o.tries = parse_tries(a->tries);
    if (a->o.tries < 0)
        return lapis_err(d, LAPIS_E_USAGE, "--tries %s: must be a number from 1 to %d (the boots a new "
                         "version gets before systemd-boot falls back)", a->tries, SU_UKI_TRIES_MAX);
    return 0;
}

static int conf_apply(struct args *a, struct lapis_diag *d)
{
    int r = a->config ? conf_load(a, d, a->config, true)
                      : conf_load(a, d, CONF_VENDOR, false) < 0 ? -1 : conf_load(a, d, CONF_ADMIN, false);
    if (r >= 0 && !a->o.url)
        a->o.url = a->conf_url;
    return r < 0 ? r : tries_apply(a, d);
}

/* ---- options ---- */

enum { O_JSON = 256, O_ROOT, O_IMAGE, O_STATE, O_KEYS, O_URL, O_ARCH, O_DOWNGRADE, O_KEY, O_VERSION,
       O_MINFROM, O_USR, O_UKI, O_CHUNK, O_LEVEL, O_ISSUED, O_VALID, O_CONFIG, O_TRIES };

static const struct option LONGOPTS[] = {
    { "json", no_argument, NULL, O_JSON }, { "image", required_argument, NULL, O_IMAGE },
    { "root", required_argument, NULL, O_ROOT },
    { "state-dir", required_argument, NULL, O_STATE }, { "keys", required_argument, NULL, O_KEYS },
    { "url", required_argument, NULL, O_URL }, { "arch", required_argument, NULL, O_ARCH },
    { "allow-downgrade", no_argument, NULL, O_DOWNGRADE }, { "key", required_argument, NULL, O_KEY },
    { "version", required_argument, NULL, O_VERSION }, { "min-from", required_argument, NULL, O_MINFROM },
    { "usr", required_argument, NULL, O_USR }, { "uki", required_argument, NULL, O_UKI },
    { "output", required_argument, NULL, 'o' }, { "chunk-size", required_argument, NULL, O_CHUNK },
    { "level", required_argument, NULL, O_LEVEL }, { "issued", required_argument, NULL, O_ISSUED },
    { "valid", required_argument, NULL, O_VALID }, { "config", required_argument, NULL, O_CONFIG },
    { "tries", required_argument, NULL, O_TRIES },
    { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
};

static void set_opt(struct args *a, int c, const char *v)
{
    switch (c) {
    case O_JSON: a->json = true; break;
    case O_IMAGE: a->o.image = v; break;
    case O_ROOT: a->o.root = v; break;
    case O_STATE: a->o.state_dir = v; break;
    case O_KEYS: a->o.keys_dir = v; break;
    case O_URL: a->o.url = v; break;
    case O_ARCH: a->o.arch = v; break;
    case O_DOWNGRADE: a->o.allow_downgrade = true; break;
    case O_KEY: a->b.key = v; break;
    case O_VERSION: a->b.version = v; break;
    case O_MINFROM: a->b.min_from = v; break;
    case O_USR: a->b.usr = v; break;
    case O_UKI: a->b.uki = v; break;
    case 'o': a->b.outdir = v; break;
    case O_CHUNK: a->b.chunk_size = atoll(v); break;
    case O_LEVEL: a->b.level = atoi(v); break;
    case O_ISSUED: a->issued = atoll(v); break;
    case O_VALID: a->valid = atoll(v); break;
    case O_CONFIG: a->config = v; break;
    case O_TRIES: a->tries = v; break;
    }
}

static void defaults(struct args *a)
{
    static struct utsname u;
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    uname(&u);
    a->o.arch = u.machine;
    a->o.keys_dir = KEYS_DIR;
    a->o.now = (long long)time(NULL);
    a->b.chunk_size = 4 << 20;
    a->b.level = 9;
    a->issued = epoch ? atoll(epoch) : a->o.now;
    a->valid = 7 * 86400;
}

static const char USAGE[] =
    "usage: lapis-sysupdate [--json] [--image DISK | --root DIR] [--state-dir DIR] [--keys DIR]\n"
    "                       [--url URL] [--arch ARCH] [--config FILE] VERB\n"
    "Without --image it acts on the running host (--root: its /dev, /sys, /proc, /run,\n"
    "/var and ESP under DIR).\n"
    "  check                      is a newer signed version available?\n"
    "  update [--allow-downgrade] [--tries N]\n"
    "                             stage it in the inactive slot (verify, write, verify);\n"
    "                             it gets N boots (default 3) to reach boot-complete.target\n"
    "  status                     both slots, versions, booted, failed, a write in progress\n"
    "  boot [CMDLINE]             at boot: which slot runs; did the boot loader fall back?\n"
    "  rollback                   the other (good) slot boots next\n"
    "  health [DIR...]            run the health checks (before boot-complete.target)\n"
    "  mark-good | mark-bad       the booted slot is good | the inactive slot failed its boot\n"
    "  cleanup                    remove UKIs of versions no slot holds\n"
    "  init --version V           record a new disk's slot a (the composer does)\n"
    "  bundle --key K --version V --usr IMG --uki UKI -o DIR [--min-from V] [--chunk-size B]\n"
    "  index --key K [--issued T] [--valid S] DIR\n"
    "The update server's URL comes from --url, or url= in [sysupdate] of\n"
    CONF_ADMIN " or " CONF_VENDOR "; the tries from --tries or tries=.\n"
    "See docs/sysupdate.md.\n";

int main(int argc, char **argv)
{
    struct args a = { 0 };
    struct lapis_diag d = { 0 };
    int c;
    defaults(&a);
    while ((c = getopt_long(argc, argv, "o:h", LONGOPTS, NULL)) != -1) {
        if (c == 'h') {
            fputs(USAGE, stdout);
            return 0;
        }
        if (c == '?') {
            fprintf(stderr, "lapis-sysupdate: bad option; verbs: check update status init boot rollback health mark-good mark-bad cleanup bundle index\n");
            return 2;
        }
        set_opt(&a, c, optarg);
    }
    _cleanup_free_ char *state = a.o.image ? xasprintf("%s.sysupdate", a.o.image)
                                           : path_in_root(a.o.root, STATE_DIR);
    if (!a.o.state_dir)
        a.o.state_dir = state;
    if (optind >= argc) {
        fprintf(stderr, "lapis-sysupdate: no verb; verbs: check update status init boot rollback health mark-good mark-bad cleanup bundle index\n");
        return 2;
    }
    a.pos = argv + optind + 1;
    a.npos = argc - optind - 1;
    if (conf_apply(&a, &d) < 0) {
        int r = fail(&a, &d);
        lapis_diag_clear(&d);
        free(a.conf_url);   /* a url= line before the bad one (LeakSanitizer) */
        return r;
    }
    for (size_t i = 0; i < ARRAY_SIZE(VERBS); i++)
        if (strcmp(argv[optind], VERBS[i].name) == 0) {
            int r = VERBS[i].fn(&a, &d);
            lapis_diag_clear(&d);
            free(a.conf_url);
            return r;
        }
    fprintf(stderr, "lapis-sysupdate: unknown verb '%s'; verbs: check update status init boot rollback health mark-good mark-bad cleanup bundle index\n",
            argv[optind]);
    free(a.conf_url);
    return 2;
}

/*
 * The image config (docs/image.md, docs/image.schema.json): a YAML file parsed
 * with libyaml into struct lapis_image_config. The document is walked with one
 * table of keys per mapping (name, handler, field offset), so the accepted
 * keys are data, read in one place, and every problem becomes one message
 * "FILE:LINE: KEY.PATH: what is wrong (what to do)".
 *
 * The config struct is flat: nested mappings (packages, os, container, ...)
 * walk their table against the same base; lists of objects (repos, users,
 * files, partitions) grow an array and walk each item against its element.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <yaml.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/image.h"
#include "lapis/common.h"
#include "shared/digest.h"

#define CONFIG_MAX_BYTES (4u << 20) /* a config is small; refuse to slurp a disk image by mistake */

struct walk {
    struct lapis_diag *d;
    const char *file;              /* as the user named it, for messages */
    yaml_document_t *doc;
    struct lapis_image_config *c;
    char path[512];                /* KEY.PATH of the node being walked */
};

struct key;
typedef int (*handler_fn)(struct walk *w, yaml_node_t *n, void *base, const struct key *k);
/* Checks a scalar; returns "what is wrong (what to do)" or NULL. */
typedef const char *(*check_fn)(const char *v);

enum {
    K_REQUIRED = 1 << 0,
    K_ONE_OR_LIST = 1 << 1,        /* strv: a single string is a one-item list */
    K_SPLIT = 1 << 2,              /* strv: a single string is split on blanks */
    K_GROW = 1 << 3,               /* size: "grow" means 0 */
};

struct key {
    const char *name;
    handler_fn fn;
    size_t off;
    size_t off2;                   /* count (lists, maps) or a second field */
    unsigned flags;
    const void *arg;               /* handler-specific: a keytab, listdesc, enum table */
    check_fn check;
};

struct keytab {
    const struct key *keys;
    size_t n;
    /* Called after the mapping was walked: cross-key rules. */
    int (*post)(struct walk *w, yaml_node_t *n, void *base);
};

struct listdesc {
    const struct keytab *items;
    size_t elemsize;
    void (*init)(void *elem);
};

struct enumval {
    const char *name;
    int val;
};

/* ---- messages ------------------------------------------------------------ */

static size_t node_line(const yaml_node_t *n)
{
    return n ? n->start_mark.line + 1 : 1;
}

static int bad(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    _cleanup_free_ char *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    /* A quoted YAML value can hold line breaks; the error stays one line. */
    for (char *p = msg; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return lapis_err(w->d, LAPIS_E_CONFIG, "%s:%zu: %s: %s", w->file, node_line(n),
                     w->path[0] ? w->path : "(top level)", msg ? msg : "invalid");
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a string";
    }
}

static size_t path_push(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_push(struct walk *w, const char *fmt, ...)
{
    size_t len = strlen(w->path);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(w->path + len, sizeof(w->path) - len, fmt, ap);
    va_end(ap);
    return len;
}

static void path_pop(struct walk *w, size_t len)
{
    w->path[len] = '\0';
}

/* ---- scalars ------------------------------------------------------------- */

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain "~", "null" or empty scalar is YAML's null: no value given. */
static bool scalar_is_null(const yaml_node_t *n)
{
    const char *v = scalar(n);

    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static int want_scalar(struct walk *w, yaml_node_t *n, const struct key *k, const char **ret)
{
    if (n->type != YAML_SCALAR_NODE)
        return bad(w, n, "expected a string, got %s (write a single value)", node_kind(n));
    if (scalar_is_null(n))
        return bad(w, n, "no value given (write a value or remove the key)");
    if (k && k->check) {
        const char *why = k->check(scalar(n));
        if (why)
            return bad(w, n, "invalid value '%s' (expected %s)", scalar(n), why);
    }
    *ret = scalar(n);
    return 0;
}

static int parse_bool(const char *v, bool *ret)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "on", "On" };
    static const char *const no[] = { "false", "False", "FALSE", "no", "No", "off", "Off" };

    for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
        if (!strcmp(v, yes[i]))
            return *ret = true, 0;
    for (size_t i = 0; i < ARRAY_SIZE(no); i++)
        if (!strcmp(v, no[i]))
            return *ret = false, 0;
    return -EINVAL;
}

static int parse_llong(const char *v, long long min, long long max, long long *ret)
{
    char *end;
    long long x;

    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max)
        return -EINVAL;
    *ret = x;
    return 0;
}

/* "256M", "2G", "1.5G" is not accepted: sizes are whole units of K, M, G or T (binary). */
static int parse_size(const char *v, unsigned long long *ret)
{
    static const char units[] = "KMGT";
    char *end;
    unsigned long long x;
    const char *u;

    if (!isdigit((unsigned char)*v))
        return -EINVAL;
    errno = 0;
    x = strtoull(v, &end, 10);
    if (errno || !*end || !(u = strchr(units, toupper((unsigned char)*end))))
        return -EINVAL;
    if (end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
        return -EINVAL;
    for (const char *p = units; p <= u; p++) {
        if (x > ULLONG_MAX / 1024)
            return -ERANGE;
        x *= 1024;
    }
    if (!x)
        return -EINVAL;
    *ret = x;
    return 0;
}

/* ---- value checks -------------------------------------------------------- */

static bool all_in(const char *v, const char *extra)
{
    for (; *v; v++)
        if (!isalnum((unsigned char)*v) && !strchr(extra, *v))
            return false;
    return true;
}

static const char *check_name(const char *v)
{
    if (!all_in(v, "._-") || v[0] == '.' || v[0] == '-')
        return "use letters, digits, '.', '_' and '-' only, not first '.' or '-' (it names the output files)";
    return NULL;
}

static const char *check_version(const char *v)
{
    if (!all_in(v, "._+~-"))
        return "use letters, digits and . _ + ~ - only (it names the output files)";
    return NULL;
}

static const char *check_arch(const char *v)
{
    if (!all_in(v, "_") || isdigit((unsigned char)v[0]))
        return "an RPM arch such as x86_64 or aarch64";
    return NULL;
}

static const char *check_hostname(const char *v)
{
    size_t label = 0;

    if (strlen(v) > 253)
        return "at most 253 characters";
    for (const char *p = v; ; p++) {
        if (*p == '.' || !*p) {
            if (!label || label > 63 || p[-1] == '-')
                return "labels of 1-63 letters, digits and '-', separated by '.'";
            if (!*p)
                return NULL;
            label = 0;
        } else if (isalnum((unsigned char)*p) || (*p == '-' && label)) {
            label++;
        } else {
            return "labels of 1-63 letters, digits and '-', separated by '.'";
        }
    }
}

static const char *check_account(const char *v)
{
    if (!(islower((unsigned char)v[0]) || v[0] == '_') || !all_in(v, "_-") || strlen(v) > 32)
        return "a lower-case letter or '_' first, then letters, digits, '_' or '-' (at most 32)";
    for (const char *p = v; *p; p++)
        if (isupper((unsigned char)*p))
            return "use lower case (useradd refuses upper-case names)";
    return NULL;
}

static const char *check_abs_path(const char *v)
{
    if (v[0] != '/')
        return "an absolute path in the image, starting with '/'";
    if (strstr(v, "/../") || str_endswith(v, "/.."))
        return "no '..' components";
    return NULL;
}

static const char *check_selinux(const char *v)
{
    if (strcmp(v, "disabled") && strcmp(v, "permissive") && strcmp(v, "enforcing"))
        return "one of disabled, permissive, enforcing";
    return NULL;
}

static const char *check_compression(const char *v)
{
    if (strcmp(v, "gzip") && strcmp(v, "zstd"))
        return "one of gzip, zstd";
    return NULL;
}

static const char *check_qcow2_compression(const char *v)
{
    if (strcmp(v, "zstd") && strcmp(v, "zlib") && strcmp(v, "none"))
        return "one of zstd, zlib, none";
    return NULL;
}

static const char *check_keep(const char *v)
{
    if (strcmp(v, "package-cache") && strcmp(v, "logs") && strcmp(v, "history") && strcmp(v, "tmp"))
        return "one of package-cache, logs, history, tmp";
    return NULL;
}

static const char *check_env_name(const char *v)
{
    if (!(isalpha((unsigned char)v[0]) || v[0] == '_') || !all_in(v, "_"))
        return "letters, digits and '_', not first a digit";
    return NULL;
}

static const char *check_sysctl(const char *v)
{
    if (!all_in(v, "._-/*") || v[0] == '/' || strstr(v, ".."))
        return "a sysctl name such as net.ipv4.ip_forward";
    return NULL;
}

static const char *check_no_newline(const char *v)
{
    return strchr(v, '\n') ? "one line only" : NULL;
}

/* ---- generic handlers ---------------------------------------------------- */

#define FIELD(base, k, type) ((type)((char *)(base) + (k)->off))

static int h_str(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    char **field = FIELD(base, k, char **);
    const char *v;
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    free(*field);
    *field = xstrdup(v);
    return 0;
}

/* Host paths (source, repo file) resolve against the config's directory. */
static char *resolve(const struct walk *w, const char *v)
{
    return v[0] == '/' ? xstrdup(v) : xasprintf("%s/%s", w->c->dir, v);
}

static int h_host_path(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    char **field = FIELD(base, k, char **);
    _cleanup_free_ char *p = NULL;
    const char *v;
    struct stat st;
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    p = resolve(w, v);
    if (stat(p, &st) < 0)
        return bad(w, n, "cannot use '%s': %s (fix the path; relative paths start at %s)", p,
                   strerror(errno), w->c->dir);
    free(*field);
    *field = realpath(p, NULL);
    if (!*field)
        *field = TAKE_PTR(p);
    return 0;
}

static int h_strv(struct walk *w, yaml_node_t *n, void *base, const struct key *k);

/* A list of host files (sysupdate.publicKeys): each resolved and checked as h_host_path does. */
static int h_host_paths(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    char ***field = FIELD(base, k, char ***);
    int r = h_strv(w, n, base, k);

    for (size_t i = 0; r >= 0 && (*field)[i]; i++) {
        bool seq = n->type == YAML_SEQUENCE_NODE;
        yaml_node_t *item = seq ? yaml_document_get_node(w->doc, n->data.sequence.items.start[i]) : n;
        size_t len = seq ? path_push(w, "[%zu]", i) : 0;
        struct key one = { .off = 0 };
        char *p = NULL;
        if ((r = h_host_path(w, item, &p, &one)) < 0)
            break;
        free((*field)[i]);
        (*field)[i] = p;
        if (seq)
            path_pop(w, len);
    }
    return r;
}

/* The agent reads the *.pem of keys.d: the name is kept, so it must say .pem. */
static const char *check_pem_name(const char *v)
{
    size_t l = strlen(v);
    const char *base = strrchr(v, '/') ? strrchr(v, '/') + 1 : v;
    return l > 4 && !strcmp(v + l - 4, ".pem") && strlen(base) > 4 && !strchr(base, ' ')
           ? NULL : "a PEM file named NAME.pem (the agent reads keys.d/*.pem)";
}

static int push_item(struct walk *w, yaml_node_t *item, const struct key *k, char ***v)
{
    const char *s;
    int r;

    if (k->flags & K_SPLIT && item->type == YAML_SCALAR_NODE && !scalar_is_null(item)) {
        _cleanup_strv_ char **words = strv_split(scalar(item), " \t\n");
        for (size_t i = 0; words && words[i]; i++)
            strv_push(v, xstrdup(words[i]));
        return 0;
    }
    r = want_scalar(w, item, k, &s);
    if (r < 0)
        return r;
    strv_push(v, xstrdup(s));
    return 0;
}

static int h_strv(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    char ***field = FIELD(base, k, char ***);
    _cleanup_strv_ char **v = xcalloc(1, sizeof(char *));
    int r;

    if (n->type == YAML_SCALAR_NODE && k->flags & (K_ONE_OR_LIST | K_SPLIT)) {
        r = push_item(w, n, k, &v);
    } else if (n->type != YAML_SEQUENCE_NODE) {
        return bad(w, n, "expected a list, got %s (write [a, b] or one '- item' per line)", node_kind(n));
    } else {
        r = 0;
        for (yaml_node_item_t *i = n->data.sequence.items.start; r >= 0 && i < n->data.sequence.items.top; i++) {
            size_t len = path_push(w, "[%td]", i - n->data.sequence.items.start);
            r = push_item(w, yaml_document_get_node(w->doc, *i), k, &v);
            if (r >= 0)
                path_pop(w, len);
        }
    }
    if (r < 0)
        return r;
    lapis_strv_free(*field);
    *field = TAKE_PTR(v);
    return 0;
}

static int h_bool(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    const char *v;
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    if (parse_bool(v, FIELD(base, k, bool *)) < 0)
        return bad(w, n, "invalid value '%s' (write true or false)", v);
    return 0;
}

/* A boolean stored as int, where -1 means "not set" (repo gpgcheck). */
static int h_tribool(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    bool b;
    int r = h_bool(w, n, &b, &(struct key){ .off = 0 });

    if (r < 0)
        return r;
    *FIELD(base, k, int *) = b;
    return 0;
}

static int h_int(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    const char *v;
    long long x;
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    if (parse_llong(v, 1, 99, &x) < 0)
        return bad(w, n, "invalid value '%s' (write a whole number from 1 to 99)", v);
    *FIELD(base, k, int *) = (int)x;
    return 0;
}

/* uid / gid: 0 .. 2^31-2 (4294967295 and 65535 are reserved "nobody"-ish values). */
static int h_id(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    const char *v;
    long long x;
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    if (parse_llong(v, 0, INT32_MAX - 1, &x) < 0)
        return bad(w, n, "invalid id '%s' (write a number from 0 to %d, or leave it out to allocate one)",
                   v, INT32_MAX - 1);
    *FIELD(base, k, long *) = (long)x;
    return 0;
}

static int h_size(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    const char *v;
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    if (k->flags & K_GROW && !strcmp(v, "grow")) {
        *FIELD(base, k, unsigned long long *) = 0;
        return 0;
    }
    if (parse_size(v, FIELD(base, k, unsigned long long *)) < 0)
        return bad(w, n, "invalid size '%s' (write a whole number with a unit K, M, G or T, e.g. 256M%s)",
                   v, k->flags & K_GROW ? ", or grow" : "");
    return 0;
}

static int h_enum(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    const char *v;
    char names[128] = "";
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    for (const struct enumval *e = k->arg; e->name; e++) {
        if (!strcmp(e->name, v))
            return *FIELD(base, k, int *) = e->val, 0;
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", names[0] ? ", " : "", e->name);
    }
    return bad(w, n, "invalid value '%s' (write one of %s)", v, names);
}

static int walk_map(struct walk *w, yaml_node_t *n, const struct keytab *t, void *base);

static int h_map(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    return walk_map(w, n, k->arg, base);
}

/* A list of objects: grows the array at k->off (count at k->off2), one walk per item. */
static int h_list(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    const struct listdesc *ld = k->arg;
    char **arr = FIELD(base, k, char **);
    size_t *cnt = (size_t *)((char *)base + k->off2);

    if (n->type != YAML_SEQUENCE_NODE)
        return bad(w, n, "expected a list, got %s (write one '- ' item per entry)", node_kind(n));
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        size_t len = path_push(w, "[%td]", i - n->data.sequence.items.start);
        char *elem;
        int r;

        *arr = xrealloc(*arr, (*cnt + 1) * ld->elemsize);
        elem = *arr + *cnt * ld->elemsize;
        memset(elem, 0, ld->elemsize);
        if (ld->init)
            ld->init(elem);
        (*cnt)++;              /* counted before the walk: config_free frees a half-filled item */
        r = walk_map(w, yaml_document_get_node(w->doc, *i), ld->items, elem);
        if (r < 0)
            return r;
        path_pop(w, len);
    }
    return 0;
}

static int dup_key(struct walk *w, yaml_node_t *map, yaml_node_pair_t *upto, const char *name)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < upto; p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        if (kn->type == YAML_SCALAR_NODE && !strcmp(scalar(kn), name))
            return (int)node_line(kn);
    }
    return 0;
}

/* A string map (env, labels, sysctl) into kv pairs, in config order. */
static int h_kv(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    struct lapis_image_kv **arr = FIELD(base, k, struct lapis_image_kv **);
    size_t *cnt = (size_t *)((char *)base + k->off2);

    if (n->type != YAML_MAPPING_NODE)
        return bad(w, n, "expected a mapping, got %s (write 'NAME: value' lines)", node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
        const char *kv, *vv;
        size_t len;
        int r, line;

        if (kn->type != YAML_SCALAR_NODE)
            return bad(w, kn, "a key must be a string");
        len = path_push(w, ".%s", scalar(kn));
        if ((line = dup_key(w, n, p, scalar(kn))))
            return bad(w, kn, "duplicate key (already set on line %d; keep one)", line);
        r = want_scalar(w, kn, k, &kv);
        if (r >= 0)
            r = want_scalar(w, vn, NULL, &vv);
        if (r < 0)
            return r;
        *arr = xrealloc(*arr, (*cnt + 1) * sizeof(**arr));
        (*arr)[(*cnt)++] = (struct lapis_image_kv){ xstrdup(kv), xstrdup(vv) };
        path_pop(w, len);
    }
    return 0;
}

/* ---- the mapping walk ---------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];

    if (lb >= ARRAY_SIZE(row))
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            row[j] = sub < up + 1 ? sub : up + 1;
            if (row[j - 1] + 1 < row[j])
                row[j] = row[j - 1] + 1;
            diag = up;
        }
    }
    return row[lb];
}

/* Compare ignoring case, '_' and '-': ssh_public_keys matches sshPublicKeys. */
static bool loose_equal(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_' || *a == '-')
            a++;
        while (*b == '_' || *b == '-')
            b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
        if (!*a)
            return true;
        a++, b++;
    }
}

static const char *closest_key(const struct keytab *t, const char *name)
{
    const char *best = NULL;
    size_t bestd = strlen(name) / 3 + 2;

    for (size_t i = 0; i < t->n; i++) {
        size_t dist = loose_equal(name, t->keys[i].name) ? 0 : edit_distance(name, t->keys[i].name);
        if (dist < bestd)
            best = t->keys[i].name, bestd = dist;
    }
    return best;
}

static const char *key_elsewhere(const char *name, char *buf, size_t len);

static int unknown_key(struct walk *w, yaml_node_t *kn, const struct keytab *t)
{
    const char *near = closest_key(t, scalar(kn));
    char known[512] = "";

    if (near)
        return bad(w, kn, "unknown key (did you mean '%s'?)", near);
    if ((near = key_elsewhere(scalar(kn), known, sizeof(known))))
        return bad(w, kn, "unknown key here (did you mean '%s'?)", near);
    for (size_t i = 0; i < t->n; i++)
        snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
                 t->keys[i].name);
    return bad(w, kn, "unknown key (known here: %s)", known);
}

static const struct key *find_key(const struct keytab *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->keys[i].name, name))
            return &t->keys[i];
    return NULL;
}

static int walk_pair(struct walk *w, yaml_node_t *map, yaml_node_pair_t *p, const struct keytab *t,
                     void *base)
{
    yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
    const struct key *k;
    size_t len;
    int r, line;

    if (kn->type != YAML_SCALAR_NODE)
        return bad(w, kn, "a key must be a string");
    len = path_push(w, "%s%s", w->path[0] ? "." : "", scalar(kn));
    if (!(k = find_key(t, scalar(kn))))
        return unknown_key(w, kn, t);
    if ((line = dup_key(w, map, p, k->name)))
        return bad(w, kn, "duplicate key (already set on line %d; keep one)", line);
    r = k->fn(w, vn, base, k);
    if (r < 0)
        return r;
    path_pop(w, len);
    return 0;
}

static int walk_map(struct walk *w, yaml_node_t *n, const struct keytab *t, void *base)
{
    int r;

    if (n->type != YAML_MAPPING_NODE)
        return bad(w, n, "expected a mapping, got %s (write 'key: value' lines)", node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
        if ((r = walk_pair(w, n, p, t, base)) < 0)
            return r;
    for (size_t i = 0; i < t->n; i++) {
        const struct key *k = &t->keys[i];
        if (k->flags & K_REQUIRED && !dup_key(w, n, n->data.mapping.pairs.top, k->name)) {
            path_push(w, "%s%s", w->path[0] ? "." : "", k->name);
            return bad(w, n, "required key missing (add it; see docs/image.md)");
        }
    }
    return t->post ? t->post(w, n, base) : 0;
}

/* ---- specific handlers --------------------------------------------------- */

static int h_formats(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    _cleanup_strv_ char **names = NULL;
    struct key sk = { .off = 0, .flags = K_ONE_OR_LIST };
    unsigned bits = 0;
    int r = h_strv(w, n, &names, &sk);

    if (r < 0)
        return r;
    for (size_t i = 0; names[i]; i++) {
        int bit = lapis_image_format_from_name(names[i]);
        if (bit < 0) {
            yaml_node_t *item = n->type == YAML_SEQUENCE_NODE
                ? yaml_document_get_node(w->doc, n->data.sequence.items.start[i]) : n;
            path_push(w, "[%zu]", i);
            return bad(w, item, "unknown format '%s' (write raw, qcow2, vhd, vhdx, iso, oci, oci-archive or bundle)",
                       names[i]);
        }
        bits |= (unsigned)bit;
    }
    if (!bits)
        return bad(w, n, "empty list (name at least one format)");
    *FIELD(base, k, unsigned *) = bits;
    return 0;
}

static int h_bootloader(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    const char *v;
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    if (strcmp(v, "uki") && strcmp(v, "bls"))
        return bad(w, n, "invalid value '%s' (write uki or bls)", v);
    *FIELD(base, k, bool *) = !strcmp(v, "uki");
    return 0;
}

/* "0644", "644", "1777": octal, at most 07777. */
static int h_mode(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    const char *v;
    char *end;
    unsigned long m;
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    errno = 0;
    m = strtoul(v, &end, 8);
    if (errno || !*v || *end || m > 07777 || strspn(v, "01234567") != strlen(v))
        return bad(w, n, "invalid mode '%s' (write octal digits, e.g. \"0644\")", v);
    *FIELD(base, k, mode_t *) = (mode_t)m;
    return 0;
}

/* owner: "UID[:GID]" numerically, or "root": the image's passwd is not read at load time. */
static int h_owner(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    struct lapis_image_file *f = base;
    const char *v;
    char uid[32] = "", *colon;
    long long u, g;
    int r = want_scalar(w, n, k, &v);

    if (r < 0)
        return r;
    if (!strcmp(v, "root") || !strcmp(v, "root:root"))
        return f->uid = 0, f->gid = 0, 0;
    snprintf(uid, sizeof(uid), "%s", v);
    if ((colon = strchr(uid, ':')))
        *colon++ = '\0';
    if (parse_llong(uid, 0, INT32_MAX - 1, &u) < 0 ||
        parse_llong(colon ? colon : uid, 0, INT32_MAX - 1, &g) < 0)
        return bad(w, n, "invalid owner '%s' (write numeric UID:GID such as 1000:1000, or root)", v);
    f->uid = (uid_t)u;
    f->gid = (gid_t)g;
    return 0;
}

/* storage.disks: one disk for now; its size and partitions live in the config. */
static int h_disks(struct walk *w, yaml_node_t *n, void *base, const struct key *k)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return bad(w, n, "expected a list, got %s (write one '- ' item per disk)", node_kind(n));
    if (n->data.sequence.items.top - n->data.sequence.items.start > 1) {
        path_push(w, "[1]");
        return bad(w, yaml_document_get_node(w->doc, n->data.sequence.items.start[1]),
                   "only one disk is supported (describe a single disk)");
    }
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        size_t len = path_push(w, "[0]");
        int r = walk_map(w, yaml_document_get_node(w->doc, *i), k->arg, base);
        if (r < 0)
            return r;
        path_pop(w, len);
    }
    return 0;
}

/* ---- the key tables ------------------------------------------------------ */

#define CFG(f) offsetof(struct lapis_image_config, f)
#define TAB(name, ...) \
    static const struct key name##_keys[] = { __VA_ARGS__ }; \
    static const struct keytab name = { name##_keys, ARRAY_SIZE(name##_keys), NULL }
#define TABP(name, postfn, ...) \
    static const struct key name##_keys[] = { __VA_ARGS__ }; \
    static const struct keytab name = { name##_keys, ARRAY_SIZE(name##_keys), postfn }

static int repo_post(struct walk *w, yaml_node_t *n, void *base)
{
    struct lapis_image_repo *r = base;

    if (!r->file == !r->id)
        return bad(w, n, "give either 'file' (a .repo file) or 'id' with 'baseurl'");
    if (r->file && (r->baseurls || r->gpgkeys || r->gpgcheck >= 0 || r->repo_gpgcheck >= 0 || r->priority))
        return bad(w, n, "'file' cannot be combined with inline settings (put them in the .repo file)");
    if (r->id && !r->baseurls)
        return bad(w, n, "inline repo '%s' has no baseurl (add baseurl)", r->id);
    return 0;
}

static const char *check_repo_id(const char *v)
{
    return all_in(v, "._:-") ? NULL : "letters, digits and . _ : - only";
}

#define REPO(f) offsetof(struct lapis_image_repo, f)
TABP(repo_tab, repo_post,
    { "file", h_host_path, REPO(file), 0, 0, NULL, NULL },
    { "id", h_str, REPO(id), 0, 0, NULL, check_repo_id },
    { "baseurl", h_strv, REPO(baseurls), 0, K_ONE_OR_LIST, NULL, check_no_newline },
    { "gpgkey", h_strv, REPO(gpgkeys), 0, K_ONE_OR_LIST, NULL, check_no_newline },
    { "gpgcheck", h_tribool, REPO(gpgcheck), 0, 0, NULL, NULL },
    { "repoGpgcheck", h_tribool, REPO(repo_gpgcheck), 0, 0, NULL, NULL },
    { "priority", h_int, REPO(priority), 0, 0, NULL, NULL });

static void repo_init(void *p)
{
    struct lapis_image_repo *r = p;
    r->gpgcheck = r->repo_gpgcheck = -1;
}
static const struct listdesc repo_list = { &repo_tab, sizeof(struct lapis_image_repo), repo_init };

TAB(packages_tab,
    { "install", h_strv, CFG(install), 0, K_REQUIRED, NULL, check_no_newline },
    { "exclude", h_strv, CFG(exclude), 0, 0, NULL, check_no_newline },
    { "installWeakDeps", h_bool, CFG(install_weak_deps), 0, 0, NULL, NULL },
    { "nodocs", h_bool, CFG(nodocs), 0, 0, NULL, NULL },
    { "languages", h_strv, CFG(languages), 0, 0, NULL, check_no_newline });

static const char *check_shell(const char *v)
{
    return v[0] == '/' ? NULL : "an absolute path such as /bin/bash";
}

#define USER(f) offsetof(struct lapis_image_user, f)
TAB(user_tab,
    { "name", h_str, USER(name), 0, K_REQUIRED, NULL, check_account },
    { "uid", h_id, USER(uid), 0, 0, NULL, NULL },
    { "passwordHash", h_str, USER(password_hash), 0, 0, NULL, check_no_newline },
    { "sshPublicKeys", h_strv, USER(ssh_keys), 0, 0, NULL, check_no_newline },
    { "secondaryGroups", h_strv, USER(groups), 0, 0, NULL, check_account },
    { "shell", h_str, USER(shell), 0, 0, NULL, check_shell },
    { "homeDirectory", h_str, USER(home), 0, 0, NULL, check_abs_path });

static void user_init(void *p)
{
    ((struct lapis_image_user *)p)->uid = -1;
}
static const struct listdesc user_list = { &user_tab, sizeof(struct lapis_image_user), user_init };

#define GROUP(f) offsetof(struct lapis_image_group, f)
TAB(group_tab,
    { "name", h_str, GROUP(name), 0, K_REQUIRED, NULL, check_account },
    { "gid", h_id, GROUP(gid), 0, 0, NULL, NULL });

static void group_init(void *p)
{
    ((struct lapis_image_group *)p)->gid = -1;
}
static const struct listdesc group_list = { &group_tab, sizeof(struct lapis_image_group), group_init };

static int file_post(struct walk *w, yaml_node_t *n, void *base)
{
    struct lapis_image_file *f = base;

    if (!f->source == !f->content)
        return bad(w, n, "give exactly one of 'source' (a host file) or 'content' (inline text)");
    return 0;
}

#define FILEF(f) offsetof(struct lapis_image_file, f)
TABP(file_tab, file_post,
    { "destination", h_str, FILEF(destination), 0, K_REQUIRED, NULL, check_abs_path },
    { "source", h_host_path, FILEF(source), 0, 0, NULL, NULL },
    { "content", h_str, FILEF(content), 0, 0, NULL, NULL },
    { "permissions", h_mode, FILEF(mode), 0, 0, NULL, NULL },
    { "owner", h_owner, 0, 0, 0, NULL, NULL });

static void file_init(void *p)
{
    ((struct lapis_image_file *)p)->mode = 0644;
}
static const struct listdesc file_list = { &file_tab, sizeof(struct lapis_image_file), file_init };

TAB(dir_tab,
    { "destination", h_str, FILEF(destination), 0, K_REQUIRED, NULL, check_abs_path },
    { "source", h_host_path, FILEF(source), 0, 0, NULL, NULL },
    { "permissions", h_mode, FILEF(mode), 0, 0, NULL, NULL },
    { "owner", h_owner, 0, 0, 0, NULL, NULL });

static void dir_init(void *p)
{
    struct lapis_image_file *f = p;
    f->mode = 0755;
    f->is_dir = true;
}
static const struct listdesc dir_list = { &dir_tab, sizeof(struct lapis_image_file), dir_init };

TAB(cmdline_tab,
    { "extraCommandLine", h_strv, CFG(kernel_cmdline), 0, K_SPLIT, NULL, NULL },
    { "serialConsole", h_bool, CFG(serial_console), 0, 0, NULL, NULL });
TAB(selinux_tab,
    { "mode", h_str, CFG(selinux_mode), 0, 0, NULL, check_selinux });
TAB(services_tab,
    { "enable", h_strv, CFG(services_enable), 0, 0, NULL, check_no_newline },
    { "disable", h_strv, CFG(services_disable), 0, 0, NULL, check_no_newline });

TAB(os_tab,
    { "hostname", h_str, CFG(hostname), 0, 0, NULL, check_hostname },
    { "timezone", h_str, CFG(timezone), 0, 0, NULL, check_no_newline },
    { "locale", h_str, CFG(locale), 0, 0, NULL, check_no_newline },
    { "kernelCommandLine", h_map, 0, 0, 0, &cmdline_tab, NULL },
    { "selinux", h_map, 0, 0, 0, &selinux_tab, NULL },
    { "users", h_list, CFG(users), CFG(nusers), 0, &user_list, NULL },
    { "groups", h_list, CFG(groups), CFG(ngroups), 0, &group_list, NULL },
    { "services", h_map, 0, 0, 0, &services_tab, NULL },
    { "additionalFiles", h_list, CFG(files), CFG(nfiles), 0, &file_list, NULL },
    { "additionalDirs", h_list, CFG(files), CFG(nfiles), 0, &dir_list, NULL },
    { "sysctl", h_kv, CFG(sysctl), CFG(nsysctl), 0, NULL, check_sysctl },
    { "hardening", h_bool, CFG(hardening), 0, 0, NULL, NULL },
    { "setuidAllow", h_strv, CFG(setuid_allow), 0, 0, NULL, check_abs_path },
    { "keep", h_strv, CFG(keep), 0, 0, NULL, check_keep });

TAB(container_tab,
    { "entrypoint", h_strv, CFG(entrypoint), 0, K_ONE_OR_LIST, NULL, NULL },
    { "cmd", h_strv, CFG(cmd), 0, K_ONE_OR_LIST, NULL, NULL },
    { "env", h_kv, CFG(env), CFG(nenv), 0, NULL, check_env_name },
    { "user", h_str, CFG(user), 0, 0, NULL, check_no_newline },
    { "workingDir", h_str, CFG(workdir), 0, 0, NULL, check_abs_path },
    { "labels", h_kv, CFG(labels), CFG(nlabels), 0, NULL, check_no_newline },
    { "layerCompression", h_str, CFG(layer_compression), 0, 0, NULL, check_compression });

static const struct enumval part_types[] = {
    { "esp", LAPIS_PART_ESP }, { "root", LAPIS_PART_ROOT }, { "var", LAPIS_PART_VAR },
    { "xbootldr", LAPIS_PART_XBOOTLDR }, { "usr", LAPIS_PART_USR },
    { "usr-verity", LAPIS_PART_USR_VERITY }, { NULL, 0 },
};
static const struct enumval fs_types[] = {
    { "ext4", LAPIS_FS_EXT4 }, { "erofs", LAPIS_FS_EROFS }, { "vfat", LAPIS_FS_VFAT }, { NULL, 0 },
};

static const char *check_part_id(const char *v)
{
    return all_in(v, "_-") && strlen(v) <= 36 ? NULL : "letters, digits, '_' and '-', at most 36";
}

#define PART(f) offsetof(struct lapis_image_partition, f)
TAB(part_tab,
    { "id", h_str, PART(id), 0, K_REQUIRED, NULL, check_part_id },
    { "type", h_enum, PART(type), 0, K_REQUIRED, part_types, NULL },
    { "size", h_size, PART(size), 0, K_REQUIRED | K_GROW, NULL, NULL },
    { "fileSystem", h_enum, PART(fs), 0, 0, fs_types, NULL });

static void part_init(void *p)
{
    ((struct lapis_image_partition *)p)->fs = -1;  /* filled from the type after the walk */
}
static const struct listdesc part_list = { &part_tab, sizeof(struct lapis_image_partition), part_init };

TAB(disk_tab,
    { "size", h_size, CFG(disk_size), 0, 0, NULL, NULL },
    { "partitions", h_list, CFG(partitions), CFG(npartitions), 0, &part_list, NULL });

TAB(storage_tab,
    { "bootLoader", h_bootloader, CFG(uki), 0, 0, NULL, NULL },
    { "disks", h_disks, 0, 0, 0, &disk_tab, NULL });

static const char *check_url(const char *v)
{
    return (!strncmp(v, "http://", 7) || !strncmp(v, "https://", 8) || !strncmp(v, "file://", 7)) &&
           !strpbrk(v, " \t\n") ? NULL : "an http://, https:// or file:// URL without blanks";
}

static const char *check_su_version(const char *v)
{
    return *v >= '0' && *v <= '9' && all_in(v, "._~") ? NULL
           : "digits, letters, '.', '_' and '~', starting with a digit";
}

/* systemd-boot's boot counter of a staged version: 1..16 (lapis-sysupdate's range). */
static const char *check_tries(const char *v)
{
    size_t n = strspn(v, "0123456789");
    long x = n && !v[n] && n < 3 ? strtol(v, NULL, 10) : 0;
    return x >= 1 && x <= 16 ? NULL : "a whole number from 1 to 16 (the boots a new version gets)";
}

TAB(sysupdate_tab,
    { "publicKeys", h_host_paths, CFG(sysupdate_keys), 0, K_ONE_OR_LIST, NULL, check_pem_name },
    { "url", h_str, CFG(sysupdate_url), 0, 0, NULL, check_url },
    { "signingKey", h_host_path, CFG(sysupdate_signing_key), 0, 0, NULL, NULL },
    { "minFromVersion", h_str, CFG(sysupdate_min_from), 0, 0, NULL, check_su_version },
    { "tries", h_int, CFG(sysupdate_tries), 0, 0, NULL, check_tries });

TAB(signing_tab,
    { "keyId", h_str, CFG(signing_key), 0, K_REQUIRED, NULL, check_no_newline },
    { "gnupgHome", h_host_path, CFG(signing_gnupghome), 0, 0, NULL, NULL });

TAB(output_tab,
    { "formats", h_formats, CFG(formats), 0, 0, NULL, NULL },
    { "qcow2Compression", h_str, CFG(qcow2_compression), 0, 0, NULL, check_qcow2_compression },
    { "signing", h_map, 0, 0, 0, &signing_tab, NULL });

TAB(top_tab,
    { "name", h_str, CFG(name), 0, K_REQUIRED, NULL, check_name },
    { "version", h_str, CFG(version), 0, K_REQUIRED, NULL, check_version },
    { "arch", h_strv, CFG(arches), 0, K_ONE_OR_LIST, NULL, check_arch },
    { "releasever", h_str, CFG(releasever), 0, 0, NULL, check_version },
    { "repos", h_list, CFG(repos), CFG(nrepos), 0, &repo_list, NULL },
    { "packages", h_map, 0, 0, K_REQUIRED, &packages_tab, NULL },
    { "os", h_map, 0, 0, 0, &os_tab, NULL },
    { "container", h_map, 0, 0, 0, &container_tab, NULL },
    { "storage", h_map, 0, 0, 0, &storage_tab, NULL },
    { "sysupdate", h_map, 0, 0, 0, &sysupdate_tab, NULL },
    { "output", h_map, 0, 0, 0, &output_tab, NULL });

/* Where else a key of that name lives, for "hostname:" written at the top. */
static const char *key_elsewhere(const char *name, char *buf, size_t len)
{
    static const struct { const char *path; const struct keytab *t; } tabs[] = {
        { "packages", &packages_tab }, { "os", &os_tab }, { "os.kernelCommandLine", &cmdline_tab },
        { "os.selinux", &selinux_tab }, { "os.services", &services_tab }, { "container", &container_tab },
        { "storage", &storage_tab }, { "storage.disks[0]", &disk_tab }, { "output", &output_tab },
        { "output.signing", &signing_tab }, { "os.users[]", &user_tab }, { "repos[]", &repo_tab },
        { "sysupdate", &sysupdate_tab },
    };

    for (size_t i = 0; i < ARRAY_SIZE(tabs); i++)
        for (size_t j = 0; j < tabs[i].t->n; j++)
            if (loose_equal(name, tabs[i].t->keys[j].name)) {
                snprintf(buf, len, "%s.%s", tabs[i].path, tabs[i].t->keys[j].name);
                return buf;
            }
    return NULL;
}

/* ---- whole-config rules and defaults ------------------------------------- */

static yaml_node_t *find_node(struct walk *w, yaml_node_t *map, const char *name)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        if (kn->type == YAML_SCALAR_NODE && !strcmp(scalar(kn), name))
            return yaml_document_get_node(w->doc, p->value);
    }
    return NULL;
}

static void default_partitions(struct lapis_image_config *c)
{
    c->partitions = xcalloc(2, sizeof(*c->partitions));
    c->partitions[0] = (struct lapis_image_partition){ xstrdup("esp"), LAPIS_PART_ESP, LAPIS_FS_VFAT,
                                                       256ull << 20 };
    c->partitions[1] = (struct lapis_image_partition){ xstrdup("root"), LAPIS_PART_ROOT, LAPIS_FS_EXT4, 0 };
    c->npartitions = 2;
}

/* The node of partitions[i] (for the line of an error), else the disk's. */
static yaml_node_t *part_node(struct walk *w, yaml_node_t *disk, size_t i)
{
    yaml_node_t *l = find_node(w, disk, "partitions");
    if (!l || l->type != YAML_SEQUENCE_NODE || (ptrdiff_t)i >= l->data.sequence.items.top - l->data.sequence.items.start)
        return disk;
    return yaml_document_get_node(w->doc, l->data.sequence.items.start[i]);
}

static const struct lapis_image_partition *part_by_id(const struct lapis_image_config *c, const char *id)
{
    for (size_t i = 0; i < c->npartitions; i++)
        if (!strcmp(c->partitions[i].id, id))
            return &c->partitions[i];
    return NULL;
}

/* The A/B host's slots (docs/sysupdate.md): usr-a and usr-b, erofs, fixed
 * size, each with its NAME-verity partner; the agent finds them by label. */
static const char *check_usr_part(const struct lapis_image_config *c, const struct lapis_image_partition *p,
                                  char *buf, size_t len)
{
    if (p->type == LAPIS_PART_USR) {
        _cleanup_free_ char *partner = xasprintf("%s-verity", p->id);
        const struct lapis_image_partition *v = part_by_id(c, partner);
        if (strcmp(p->id, "usr-a") && strcmp(p->id, "usr-b"))
            return "a usr partition's id is usr-a or usr-b (the update agent's two slots)";
        if (p->fs != LAPIS_FS_EROFS)
            return "a usr slot is erofs (set fileSystem: erofs or leave it out)";
        if (!v || v->type != LAPIS_PART_USR_VERITY)
            return snprintf(buf, len, "%s has no hash partition (add {id: %s, type: usr-verity, "
                            "size: 64M})", p->id, partner), buf;
        if (!strcmp(p->id, "usr-b") && !part_by_id(c, "usr-a"))
            return "usr-b needs usr-a, which holds the image's /usr (add usr-a and usr-a-verity)";
    } else if (p->type == LAPIS_PART_USR_VERITY) {
        if (strcmp(p->id, "usr-a-verity") && strcmp(p->id, "usr-b-verity"))
            return "a usr-verity partition's id is usr-a-verity or usr-b-verity (the hash "
                   "partition of usr-a or usr-b)";
    } else {
        return NULL;
    }
    if (!p->size)
        return "a slot has a fixed size: the agent writes every version into it (give it a size, e.g. 2G)";
    return NULL;
}

static int check_partitions(struct walk *w, yaml_node_t *root)
{
    struct lapis_image_config *c = w->c;
    yaml_node_t *disks = find_node(w, find_node(w, root, "storage"), "disks");
    yaml_node_t *at = disks && disks->type == YAML_SEQUENCE_NODE && disks->data.sequence.items.start
        < disks->data.sequence.items.top ? yaml_document_get_node(w->doc, *disks->data.sequence.items.start)
        : root;
    size_t nesp = 0, nroot = 0;
    char buf[160];

    for (size_t i = 0; i < c->npartitions; i++) {
        struct lapis_image_partition *p = &c->partitions[i];
        bool fs_given = (int)p->fs != -1;
        if (!fs_given)
            p->fs = p->type == LAPIS_PART_ESP || p->type == LAPIS_PART_XBOOTLDR ? LAPIS_FS_VFAT
                    : p->type == LAPIS_PART_USR ? LAPIS_FS_EROFS
                    : p->type == LAPIS_PART_USR_VERITY ? LAPIS_FS_NONE : LAPIS_FS_EXT4;
        nesp += p->type == LAPIS_PART_ESP;
        nroot += p->type == LAPIS_PART_ROOT;
        c->ab |= p->type == LAPIS_PART_USR;
        snprintf(w->path, sizeof(w->path), "storage.disks[0].partitions[%zu]", i);
        if (p->type == LAPIS_PART_ESP && p->fs != LAPIS_FS_VFAT)
            return bad(w, at, "the ESP must be vfat (set fileSystem: vfat)");
        if (p->type == LAPIS_PART_USR_VERITY && fs_given)
            return bad(w, part_node(w, at, i), "a usr-verity partition holds a hash tree, no file "
                       "system (remove fileSystem)");
        if (!p->size && i + 1 != c->npartitions)
            return bad(w, at, "only the last partition can grow (give this one a size)");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->partitions[j].id, p->id))
                return bad(w, at, "duplicate partition id '%s' (make ids unique)", p->id);
    }
    for (size_t i = 0; i < c->npartitions; i++) {
        const struct lapis_image_partition *p = &c->partitions[i];
        const char *why = check_usr_part(c, p, buf, sizeof(buf));
        snprintf(w->path, sizeof(w->path), "storage.disks[0].partitions[%zu]", i);
        if (!why && p->type == LAPIS_PART_USR_VERITY) {
            _cleanup_free_ char *usr = xstrndup(p->id, strlen(p->id) - 7);
            const struct lapis_image_partition *u = part_by_id(c, usr);
            if (!u || u->type != LAPIS_PART_USR)
                why = (snprintf(buf, sizeof(buf), "%s hashes %s, which is missing (add {id: %s, "
                                "type: usr, size: 2G})", p->id, usr, usr), buf);
        }
        if (!why && c->ab && p->type == LAPIS_PART_ROOT && p->fs != LAPIS_FS_EXT4)
            why = "next to usr slots the root is the writable ext4 (/etc, /var; set fileSystem: ext4)";
        if (why)
            return bad(w, part_node(w, at, i), "%s", why);
    }
    snprintf(w->path, sizeof(w->path), "storage.disks[0].partitions");
    if (nesp != 1 || nroot != 1)
        return bad(w, at, "need exactly one esp and one root partition (found %zu and %zu)", nesp, nroot);
    return 0;
}

/* output.formats: bundle needs the A/B layout and the key that signs it. */
static int check_bundle(struct walk *w, yaml_node_t *root)
{
    yaml_node_t *f = find_node(w, find_node(w, root, "output"), "formats");
    snprintf(w->path, sizeof(w->path), "output.formats");
    if (!w->c->ab)
        return bad(w, f ? f : root, "bundle is the A/B host's update: it needs usr-a/usr-b "
                   "partitions (see data/images/container-host.yaml)");
    if (!w->c->sysupdate_signing_key)
        return bad(w, f ? f : root, "bundle needs sysupdate.signingKey (the Ed25519 private key "
                   "that signs the manifest)");
    return 0;
}

/* An ISO boots a live copy of one root; the A/B host boots its slots from
 * the disk it updates, so an ISO of it could never be updated or verified. */
static int check_no_iso(struct walk *w, yaml_node_t *root)
{
    yaml_node_t *f = find_node(w, find_node(w, root, "output"), "formats");
    snprintf(w->path, sizeof(w->path), "output.formats");
    return bad(w, f ? f : root, "iso cannot hold the A/B host (usr-a/usr-b slots boot from the disk "
               "they are updated on): use raw, qcow2, vhd or vhdx");
}

static int check_whole(struct walk *w, yaml_node_t *root)
{
    struct lapis_image_config *c = w->c;
    int r;

    if (c->npartitions && (r = check_partitions(w, root)) < 0)
        return r;
    if (!c->npartitions)
        default_partitions(c);
    if ((c->formats & LAPIS_IMAGE_BUNDLE) && (r = check_bundle(w, root)) < 0)
        return r;
    if (c->ab && (c->formats & LAPIS_IMAGE_ISO) && (r = check_no_iso(w, root)) < 0)
        return r;
    if (!c->arches) {
        struct utsname u;
        c->arches = xcalloc(2, sizeof(char *));
        c->arches[0] = xstrdup(uname(&u) == 0 ? u.machine : "x86_64");
    }
    for (size_t i = 0; i < c->nusers; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->users[i].name, c->users[j].name)) {
                snprintf(w->path, sizeof(w->path), "os.users[%zu].name", i);
                return bad(w, find_node(w, root, "os"), "user '%s' is listed twice (keep one entry)",
                           c->users[i].name);
            }
    return 0;
}

static void set_defaults(struct lapis_image_config *c)
{
    c->nodocs = true;
    c->timezone = xstrdup("UTC");
    c->locale = xstrdup("C.UTF-8");
    c->hardening = true;
    c->layer_compression = xstrdup("gzip");
    c->qcow2_compression = xstrdup("zstd");
    c->uki = true;
    c->formats = LAPIS_IMAGE_RAW | LAPIS_IMAGE_OCI;
}

/* ---- loading ------------------------------------------------------------- */

static int read_config(struct lapis_diag *d, const char *path, char **ret_buf, size_t *ret_len)
{
    int r = read_file(path, CONFIG_MAX_BYTES, ret_buf, ret_len);

    if (r == -EFBIG)
        return lapis_err(d, LAPIS_E_CONFIG, "%s: larger than %u MiB; is this really an image config?",
                         path, CONFIG_MAX_BYTES >> 20);
    if (r < 0)
        return lapis_err(d, LAPIS_E_CONFIG, "cannot read image config %s: %s", path, strerror(-r));
    return 0;
}

static void hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

static int set_paths(struct lapis_diag *d, struct lapis_image_config *c, const char *path)
{
    char *slash;

    c->path = realpath(path, NULL);
    if (!c->path)
        return lapis_err(d, LAPIS_E_CONFIG, "cannot resolve image config %s: %s", path, strerror(errno));
    c->dir = xstrdup(c->path);
    slash = strrchr(c->dir, '/');
    if (slash == c->dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return 0;
}

static int parse_yaml(struct lapis_diag *d, const char *file, const char *buf, size_t len,
                      yaml_document_t *doc)
{
    yaml_parser_t parser;
    int ok;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    ok = yaml_parser_load(&parser, doc);
    if (!ok) {
        size_t line = parser.problem_mark.line + 1;
        int r = lapis_err(d, LAPIS_E_CONFIG, "%s:%zu: invalid YAML: %s%s%s (fix the syntax)", file, line,
                          parser.problem ? parser.problem : "cannot parse",
                          parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return r;
    }
    yaml_parser_delete(&parser);
    return 0;
}

static int load_doc(struct walk *w, struct lapis_image_config *c)
{
    yaml_node_t *root = yaml_document_get_root_node(w->doc);
    int r;

    if (!root)
        return lapis_err(w->d, LAPIS_E_CONFIG, "%s:1: the file is empty (write an image config; see docs/image.md)",
                         w->file);
    set_defaults(c);
    r = walk_map(w, root, &top_tab, c);
    if (r >= 0)
        r = check_whole(w, root);
    return r;
}

int lapis_image_config_load(struct lapis_diag *d, const char *path, struct lapis_image_config **ret)
{
    _cleanup_free_ char *buf = NULL;
    struct lapis_image_config *c;
    yaml_document_t doc;
    char hex[65];
    size_t len = 0;
    int r;

    r = read_config(d, path, &buf, &len);
    if (r < 0)
        return r;
    c = xcalloc(1, sizeof(*c));
    if ((r = set_paths(d, c, path)) < 0 || (r = parse_yaml(d, path, buf, len, &doc)) < 0) {
        lapis_image_config_free(c);
        return r;
    }
    lapis_chk_buf(buf, len, LAPIS_CHK_SHA256, hex, sizeof(hex));
    hex_to_bytes(hex, c->sha256, sizeof(c->sha256));
    r = load_doc(&(struct walk){ .d = d, .file = path, .doc = &doc, .c = c }, c);
    yaml_document_delete(&doc);
    if (r < 0) {
        lapis_image_config_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

/* ---- freeing ------------------------------------------------------------- */

static void kv_free(struct lapis_image_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void repos_free(struct lapis_image_repo *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].file);
        free(r[i].id);
        lapis_strv_free(r[i].baseurls);
        lapis_strv_free(r[i].gpgkeys);
    }
    free(r);
}

static void users_free(struct lapis_image_user *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(u[i].name);
        free(u[i].password_hash);
        lapis_strv_free(u[i].ssh_keys);
        lapis_strv_free(u[i].groups);
        free(u[i].shell);
        free(u[i].home);
    }
    free(u);
}

static void os_free(struct lapis_image_config *c)
{
    free(c->hostname);
    free(c->timezone);
    free(c->locale);
    lapis_strv_free(c->kernel_cmdline);
    free(c->selinux_mode);
    users_free(c->users, c->nusers);
    for (size_t i = 0; i < c->ngroups; i++)
        free(c->groups[i].name);
    free(c->groups);
    lapis_strv_free(c->services_enable);
    lapis_strv_free(c->services_disable);
    for (size_t i = 0; i < c->nfiles; i++) {
        free(c->files[i].destination);
        free(c->files[i].source);
        free(c->files[i].content);
    }
    free(c->files);
    kv_free(c->sysctl, c->nsysctl);
    lapis_strv_free(c->setuid_allow);
    lapis_strv_free(c->keep);
}

void lapis_image_config_free(struct lapis_image_config *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->dir);
    free(c->name);
    free(c->version);
    lapis_strv_free(c->arches);
    free(c->releasever);
    repos_free(c->repos, c->nrepos);
    lapis_strv_free(c->install);
    lapis_strv_free(c->exclude);
    lapis_strv_free(c->languages);
    os_free(c);
    lapis_strv_free(c->entrypoint);
    lapis_strv_free(c->cmd);
    kv_free(c->env, c->nenv);
    free(c->user);
    free(c->workdir);
    kv_free(c->labels, c->nlabels);
    free(c->layer_compression);
    free(c->qcow2_compression);
    for (size_t i = 0; i < c->npartitions; i++)
        free(c->partitions[i].id);
    free(c->partitions);
    free(c->signing_key);
    free(c->signing_gnupghome);
    lapis_strv_free(c->sysupdate_keys);
    free(c->sysupdate_url);
    free(c->sysupdate_signing_key);
    free(c->sysupdate_min_from);
    free(c);
}

/* ---- formats ------------------------------------------------------------- */

static const struct enumval formats[] = {
    { "raw", LAPIS_IMAGE_RAW }, { "qcow2", LAPIS_IMAGE_QCOW2 }, { "vhd", LAPIS_IMAGE_VHD },
    { "vhdx", LAPIS_IMAGE_VHDX }, { "iso", LAPIS_IMAGE_ISO }, { "oci", LAPIS_IMAGE_OCI },
    { "oci-archive", LAPIS_IMAGE_OCI_ARCHIVE }, { "bundle", LAPIS_IMAGE_BUNDLE }, { NULL, 0 },
};

int lapis_image_format_from_name(const char *name)
{
    for (const struct enumval *f = formats; f->name; f++)
        if (!strcmp(f->name, name))
            return f->val;
    return -1;
}

/* The first serial port UEFI machines of the arch have: a 16550 on PCs, the
 * PL011 on Arm's (QEMU virt, Azure's Ampere and Cobalt VMs). */
static const char *serial_console(const char *arch)
{
    return arch && !strcmp(arch, "aarch64") ? "console=ttyAMA0" : "console=ttyS0";
}

char *lapis_image_kernel_args(const struct lapis_image_config *c, const char *arch,
                              const char *head)
{
    char *s = xstrdup(head);
    for (char **a = c ? c->kernel_cmdline : NULL; a && *a; a++) {
        char *t = xasprintf("%s %s", s, *a);
        free(s);
        s = t;
    }
    if (c && c->serial_console) {
        char *t = xasprintf("%s %s", s, serial_console(arch));
        free(s);
        s = t;
    }
    return s;
}

const char *lapis_image_format_name(unsigned bit)
{
    for (const struct enumval *f = formats; f->name; f++)
        if ((unsigned)f->val == bit)
            return f->name;
    return NULL;
}

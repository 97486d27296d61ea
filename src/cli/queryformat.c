/*
 * --queryformat / --qf for repoquery, list and info, with dnf5's tags
 * (repoquery --querytags lists them):
 * "%{name}-%{evr}\n", "%-20{name}" (left-aligned in 20 columns), "%10{arch}"
 * (right-aligned). An unknown tag stays as written, "\n" and "\t" are a
 * newline and a tab, and the lines come out sorted and unique, as dnf5 prints
 * them. A format without a final newline gets one (one package per line).
 * Package text is sanitized per value; what the user wrote passes as written.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "cli.h"

static char *num(unsigned long long v)
{
    char *s;
    return asprintf(&s, "%llu", v) < 0 ? NULL : s;
}

/* Package text, sanitized line by line; the format's own text is the user's. */
static char *sanitized(const char *v)
{
    struct { char *s; size_t len; } b = { calloc(1, 1), 0 };
    for (const char *line = v; b.s && *line;) {
        size_t n = strcspn(line, "\n");
        char *part = strndup(line, n), *clean = part ? lapis_sanitize(part) : NULL;
        size_t add = clean ? strlen(clean) : 0;
        char *grown = realloc(b.s, b.len + add + 2);
        if (grown) {
            b.s = grown;
            memcpy(b.s + b.len, clean ? clean : "", add);
            b.len += add;
            if (line[n])
                b.s[b.len++] = '\n';
            b.s[b.len] = '\0';
        }
        free(clean);
        free(part);
        line += n + (line[n] ? 1 : 0);
    }
    return b.s;
}

static char *joined(char **v)
{
    size_t len = 1;
    for (size_t i = 0; v && v[i]; i++)
        len += strlen(v[i]) + 1;
    char *s = calloc(1, len);
    for (size_t i = 0; s && v && v[i]; i++) {
        strcat(s, v[i]);
        strcat(s, "\n");
    }
    lapis_strv_free(v);
    return s;
}

/* dnf5's words for the reasons (transaction_item_reason_to_string). */
static const char *reason_text(lapis_ctx *ctx, lapis_pkg p)
{
    if (!lapis_pkg_installed(ctx, p))
        return "None";
    switch (lapis_pkg_reason(ctx, p)) {
    case LAPIS_REASON_USER: return "User";
    case LAPIS_REASON_DEP: return "Dependency";
    case LAPIS_REASON_WEAK: return "Weak Dependency";
    case LAPIS_REASON_GROUP: return "Group";
    default: return "External User"; /* installed by rpm directly */
    }
}

static const char *repo_name(lapis_ctx *ctx, lapis_pkg p)
{
    const char *id = lapis_pkg_repoid(ctx, p);
    for (size_t i = 0; i < lapis_repo_count(ctx); i++)
        if (strcmp(lapis_repo_id(lapis_repo_at(ctx, i)), id) == 0)
            return lapis_repo_name(lapis_repo_at(ctx, i));
    return id;
}

static char *full_nevra(lapis_ctx *ctx, lapis_pkg p)
{
    char *s;
    return asprintf(&s, "%s-%u:%s-%s.%s", lapis_pkg_name(ctx, p), lapis_pkg_epoch(ctx, p),
                    lapis_pkg_version(ctx, p), lapis_pkg_release(ctx, p),
                    lapis_pkg_arch(ctx, p)) < 0 ? NULL : s;
}

static const struct {
    const char *tag;
    enum lapis_dep_kind kind;
} dep_tags[] = {
    { "requires", LAPIS_DEP_REQUIRES }, { "provides", LAPIS_DEP_PROVIDES },
    { "recommends", LAPIS_DEP_RECOMMENDS }, { "suggests", LAPIS_DEP_SUGGESTS },
    { "conflicts", LAPIS_DEP_CONFLICTS }, { "obsoletes", LAPIS_DEP_OBSOLETES },
    { "supplements", LAPIS_DEP_SUPPLEMENTS }, { "enhances", LAPIS_DEP_ENHANCES },
    { "requires_pre", LAPIS_DEP_REQUIRES_PRE }, { "regular_requires", LAPIS_DEP_REGULAR_REQUIRES },
    { "prereq_ignoreinst", LAPIS_DEP_PREREQ_IGNOREINST }, { "depends", LAPIS_DEP_DEPENDS },
};

/* dnf5's source_name: the source package's name, from "NAME-VERSION-RELEASE.src.rpm". */
static char *source_name(lapis_ctx *ctx, lapis_pkg p)
{
    const char *srpm = lapis_pkg_sourcerpm(ctx, p);
    char *s = strdup(srpm ? srpm : ""), *dash;
    for (int i = 0; s && i < 2 && (dash = strrchr(s, '-')); i++)
        *dash = '\0';
    return s;
}

/* dnf5's debug_name: NAME-debuginfo (a debuginfo package's own name stays). */
static char *debug_name(const char *name)
{
    static const char suffix[] = "-debuginfo";
    size_t n = name ? strlen(name) : 0;
    char *s;
    if (n >= sizeof(suffix) - 1 && strcmp(name + n - (sizeof(suffix) - 1), suffix) == 0)
        return strdup(name);
    return asprintf(&s, "%s%s", name ? name : "", suffix) < 0 ? NULL : s;
}

static char *source_debug_name(lapis_ctx *ctx, lapis_pkg p)
{
    char *src = source_name(ctx, p), *s = src ? debug_name(src) : NULL;
    free(src);
    return s;
}

/* dnf5's location: the first URL the package downloads from ("" once installed). */
static char *location(struct cli *c, lapis_pkg p)
{
    char *u = lapis_pkg_installed(c->ctx, p) ? NULL : cli_location_url(c, p);
    return u ? u : strdup("");
}

static char *str_tag(lapis_ctx *ctx, lapis_pkg p, const char *tag)
{
    static const struct {
        const char *tag;
        const char *(*get)(lapis_ctx *, lapis_pkg);
    } strs[] = {
        { "name", lapis_pkg_name }, { "version", lapis_pkg_version },
        { "release", lapis_pkg_release }, { "arch", lapis_pkg_arch }, { "evr", lapis_pkg_evr },
        { "nevra", lapis_pkg_nevra }, { "repoid", lapis_pkg_repoid },
        { "summary", lapis_pkg_summary }, { "description", lapis_pkg_description },
        { "url", lapis_pkg_url }, { "license", lapis_pkg_license },
        { "sourcerpm", lapis_pkg_sourcerpm }, { "reason", reason_text },
        { "reponame", repo_name }, { "vendor", lapis_pkg_vendor },
        { "packager", lapis_pkg_packager }, { "group", lapis_pkg_group },
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (strcmp(strs[i].tag, tag) == 0) {
            const char *v = strs[i].get(ctx, p);
            return strdup(v ? v : "");
        }
    return NULL;
}

/* The value of TAG for p (malloc'd), or NULL when TAG is no tag. */
static char *tag_value(struct cli *c, lapis_pkg p, const char *tag)
{
    lapis_ctx *ctx = c->ctx;
    char *v = str_tag(ctx, p, tag);
    if (v)
        return v;
    if (strcmp(tag, "epoch") == 0)
        return num(lapis_pkg_epoch(ctx, p));
    if (strcmp(tag, "full_nevra") == 0)
        return full_nevra(ctx, p);
    if (strcmp(tag, "installsize") == 0)
        return num(lapis_pkg_installsize(ctx, p));
    if (strcmp(tag, "downloadsize") == 0)
        return num(lapis_pkg_installed(ctx, p) ? 0 : lapis_pkg_downloadsize(ctx, p));
    if (strcmp(tag, "buildtime") == 0)
        return num(lapis_pkg_buildtime(ctx, p));
    if (strcmp(tag, "from_repo") == 0) {
        char *r = lapis_pkg_from_repo(ctx, p); /* dnf5: "<unknown>" for rpm's own installs */
        return r ? r : strdup(lapis_pkg_installed(ctx, p) ? "<unknown>" : "");
    }
    if (strcmp(tag, "installtime") == 0)
        return num(lapis_pkg_installtime(ctx, p));
    if (strcmp(tag, "location") == 0)
        return location(c, p);
    if (strcmp(tag, "debug_name") == 0)
        return debug_name(lapis_pkg_name(ctx, p));
    if (strcmp(tag, "source_debug_name") == 0)
        return source_debug_name(ctx, p);
    if (strcmp(tag, "files") == 0)
        return joined(lapis_pkg_files(ctx, p));
    if (strcmp(tag, "source_name") == 0)
        return source_name(ctx, p);
    for (size_t i = 0; i < sizeof(dep_tags) / sizeof(dep_tags[0]); i++)
        if (strcmp(tag, dep_tags[i].tag) == 0)
            return joined(lapis_pkg_deps(ctx, p, dep_tags[i].kind));
    return NULL;
}

/* Every tag tag_value() knows, for --querytags (a test checks each one). */
static const char *const all_tags[] = {
    "arch", "buildtime", "conflicts", "debug_name", "depends", "description", "downloadsize",
    "enhances", "epoch", "evr", "files", "from_repo", "full_nevra", "group", "installsize",
    "installtime", "license", "location", "name", "nevra", "obsoletes", "packager",
    "prereq_ignoreinst", "provides", "reason", "recommends", "regular_requires", "release",
    "repoid", "reponame", "requires", "requires_pre", "source_debug_name", "source_name",
    "sourcerpm", "suggests", "summary", "supplements", "url", "vendor", "version",
};

void cli_qf_print_tags(void)
{
    for (size_t i = 0; i < sizeof(all_tags) / sizeof(all_tags[0]); i++)
        puts(all_tags[i]);
}

bool cli_qf_needs_filelists(const char *fmt)
{
    return fmt && strstr(fmt, "{files}");
}

struct buf {
    char *s;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *grown = realloc(b->s, cap);
        /* As the library's xrealloc: a half-formatted line is worse than stopping. */
        if (!grown) {
            fputs("lapis: error: out of memory formatting --queryformat output\n", stderr);
            abort();
        }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

/* "%[-]WIDTH{tag}" at *f: appends the value and returns the characters used, or 0. */
static size_t put_tag(struct buf *b, struct cli *c, lapis_pkg p, const char *f)
{
    const char *q = f + 1;
    bool left = *q == '-';
    q += left;
    long width = strtol(q, (char **)&q, 10);
    if (*q != '{' || (left && width == 0))
        return 0;
    const char *end = strchr(q, '}');
    if (!end)
        return 0;
    char *tag = strndup(q + 1, (size_t)(end - q - 1));
    for (char *t = tag; t && *t; t++) /* dnf5's tags are case-insensitive: %{NAME} */
        *t = (char)tolower((unsigned char)*t);
    char *raw = tag ? tag_value(c, p, tag) : NULL;
    free(tag);
    if (!raw)
        return 0;
    char *v = sanitized(raw);
    free(raw);
    if (!v)
        return 0;
    long pad = width - (long)strlen(v);
    for (long i = 0; !left && i < pad; i++)
        put(b, " ", 1);
    put(b, v, strlen(v));
    for (long i = 0; left && i < pad; i++)
        put(b, " ", 1);
    free(v);
    return (size_t)(end - f + 1);
}

char *cli_qf_format(struct cli *c, lapis_pkg p, const char *fmt)
{
    struct buf b = { 0 };
    put(&b, "", 0);
    for (const char *f = fmt; *f;) {
        size_t used = *f == '%' ? put_tag(&b, c, p, f) : 0;
        if (used) {
            f += used;
        } else if (f[0] == '\\' && (f[1] == 'n' || f[1] == 't')) {
            put(&b, f[1] == 'n' ? "\n" : "\t", 1);
            f += 2;
        } else {
            put(&b, f++, 1);
        }
    }
    if (b.len == 0 || b.s[b.len - 1] != '\n')
        put(&b, "\n", 1);
    return b.s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void cli_qf_print(struct cli *c, const lapis_pkglist *l, const char *fmt)
{
    char **out = calloc(l->count + 1, sizeof(char *));
    for (size_t i = 0; out && i < l->count; i++)
        out[i] = cli_qf_format(c, l->pkgs[i], fmt);
    if (!out)
        return;
    qsort(out, l->count, sizeof(char *), cmp_str);
    for (size_t i = 0; i < l->count; i++) {
        if (!out[i] || (i > 0 && out[i - 1] && strcmp(out[i], out[i - 1]) == 0))
            continue;
        fputs(out[i], stdout); /* tag values were sanitized as they went in */
    }
    lapis_strv_free(out);
}

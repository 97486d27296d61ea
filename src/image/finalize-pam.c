/*
 * /etc/pam.d/common-*: what libpam-runtime's postinst writes with
 * pam-auth-update (the test distribution drops maintainer scripts). Without
 * them every service's stack (@include common-auth ...) fails to load:
 * sshd logs "PAM: initialisation failed" and closes the connection. The
 * files are made the way pam-auth-update makes them: the templates of
 * /usr/share/pam with the "Default: yes" profiles of /usr/share/pam-configs,
 * highest priority first, the first module of a block in its -Initial form,
 * "end" jumps turned into the count of lines left in the block. A file that
 * is already there is kept.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/finalize.h"

struct profile {
    char *name;
    long priority;
    char **fields;        /* "Key", "value", "Key", "value", ... */
};

static const char *pf_get(const struct profile *p, const char *key)
{
    for (char **f = p->fields; f && f[0] && f[1]; f += 2)
        if (!strcasecmp(f[0], key))
            return f[1];
    return NULL;
}

/* Debian control syntax: "Key: value", continuation lines indented. */
static void pf_parse(struct profile *p, const char *text)
{
    _cleanup_strv_ char **lines = strv_split(text, "\n");
    size_t n = 0;

    for (char **l = lines; l && *l; l++) {
        if ((**l == ' ' || **l == '\t') && n) {
            char *v = p->fields[n - 1];
            char *s = strstrip(*l);
            p->fields[n - 1] = *v ? xasprintf("%s\n%s", v, s) : xstrdup(s);
            free(v);
            continue;
        }
        char *colon = strchr(*l, ':');
        if (!colon)
            continue;
        strv_push(&p->fields, xstrndup(*l, (size_t)(colon - *l)));
        strv_push(&p->fields, xstrdup(strstrip(colon + 1)));
        n += 2;
    }
}

static int pf_cmp(const void *x, const void *y)
{
    const struct profile *a = x, *b = y;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    return strcmp(a->name, b->name);
}

static size_t load_profiles(struct lapis_image_build *b, struct profile **ret)
{
    _cleanup_close_ int dfd = open_dir_in_root(b->rootdir, "/usr/share/pam-configs", false);
    DIR *d = dfd >= 0 ? fdopendir(TAKE_FD(dfd)) : NULL;
    struct profile *v = NULL;
    struct dirent *de;
    size_t n = 0;

    while (d && (de = readdir(d))) {
        _cleanup_free_ char *path = xasprintf("/usr/share/pam-configs/%s", de->d_name);
        _cleanup_free_ char *text = NULL;
        if (de->d_name[0] == '.' || fin_read(b, path, &text, NULL) < 0)
            continue;
        struct profile p = { .name = xstrdup(de->d_name) };
        pf_parse(&p, text);
        const char *def = pf_get(&p, "Default"), *prio = pf_get(&p, "Priority");
        if (!def || strcasecmp(def, "yes")) {
            free(p.name);
            lapis_strv_free(p.fields);
            continue;
        }
        p.priority = prio ? strtol(prio, NULL, 10) : 0;
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n++] = p;
    }
    if (d)
        closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), pf_cmp);
    *ret = v;
    return n;
}

/* "Auth" + "Primary": the lines of that block, without "end" resolved. */
static char **block_lines(const struct profile *pv, size_t n, const char *type, const char *block,
                          bool nonint)
{
    _cleanup_free_ char *tkey = xasprintf("%s-Type", type), *ikey = xasprintf("%s-Initial", type);
    char **out = NULL;

    for (size_t i = 0; i < n; i++) {
        const char *t = pf_get(&pv[i], tkey), *io = pf_get(&pv[i], "Session-Interactive-Only");
        if (!t || strcasecmp(t, block) || (nonint && io && !strcasecmp(io, "yes")))
            continue;
        const char *text = (!out && pf_get(&pv[i], ikey)) ? pf_get(&pv[i], ikey) : pf_get(&pv[i], type);
        _cleanup_strv_ char **l = text ? strv_split(text, "\n") : NULL;
        for (char **s = l; s && *s; s++)
            strv_push(&out, xstrdup(*s));
    }
    return out;
}

/* Each "=end" jumps past the rest of the block (and, for the primary
 * block, the pam_deny fallback that follows it). */
static char *render_block(char **lines, const char *type, bool primary)
{
    size_t n = strv_length(lines);
    char *out;

    /* No primary module (session on Debian): step over the pam_deny, as
     * pam-auth-update does. */
    if (primary && !n)
        return xasprintf("%s\t[default=1]\t\t\tpam_permit.so\n", type);
    out = xstrdup("");

    for (size_t i = 0; i < n; i++) {
        char jump[24], *t;
        snprintf(jump, sizeof(jump), "=%zu", n - i - (primary ? 0 : 1));
        _cleanup_free_ char *line = xstrdup(lines[i]);
        for (char *e; (e = strstr(line, "=end")) && (e[4] == ' ' || e[4] == ']');) {
            *e = '\0';
            t = xasprintf("%s%s%s", line, jump, e + 4);
            free(line);
            line = t;
        }
        t = xasprintf("%s%s\t%s\n", out, type, line);
        free(out);
        out = t;
    }
    return out;
}

static const char *const common_files[][2] = {
    { "common-auth", "Auth" },
    { "common-account", "Account" },
    { "common-password", "Password" },
    { "common-session", "Session" },
    { "common-session-noninteractive", "Session" },
};

/* The template line by line (empty lines kept), each $block expanded. */
static char *expand(const char *tmpl, const struct profile *pv, size_t n, const char *type,
                    bool nonint)
{
    char *out = xstrdup("");

    for (const char *p = tmpl; *p;) {
        size_t len = strcspn(p, "\n");
        _cleanup_free_ char *l = xstrndup(p, len), *add = NULL;
        p += len + (p[len] == '\n');
        if (*l == '$') {
            bool primary = str_endswith(l, "_primary");
            _cleanup_strv_ char **bl = block_lines(pv, n, type, primary ? "Primary" : "Additional",
                                                   nonint);
            _cleanup_free_ char *lower = xstrdup(type);
            lower[0] = (char)(lower[0] | 0x20);
            add = render_block(bl, lower, primary);
        } else {
            add = xasprintf("%s\n", l);
        }
        char *t = xasprintf("%s%s", out, add);
        free(out);
        out = t;
    }
    return out;
}

int fin_pam(struct lapis_image_build *b)
{
    struct profile *pv = NULL;
    size_t n;
    int r = 0;

    if (!fin_exists(b, "/usr/share/pam/common-auth"))
        return 0;
    n = load_profiles(b, &pv);
    for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(common_files); i++) {
        _cleanup_free_ char *dst = xasprintf("/etc/pam.d/%s", common_files[i][0]);
        _cleanup_free_ char *src = xasprintf("/usr/share/pam/%s", common_files[i][0]);
        _cleanup_free_ char *tmpl = NULL, *text = NULL;
        if (fin_exists(b, dst) || fin_read(b, src, &tmpl, NULL) < 0)
            continue;
        text = expand(tmpl, pv, n, common_files[i][1], strstr(dst, "noninteractive") != NULL);
        r = fin_write_str(b, dst, text);
    }
    for (size_t i = 0; i < n; i++) {
        free(pv[i].name);
        lapis_strv_free(pv[i].fields);
    }
    free(pv);
    return r;
}

/*
 * Users and groups: systemd-sysusers --root for what the packages declare
 * (sysusers.d), then the config's groups and users edited into /etc/passwd,
 * /etc/group, /etc/shadow and /etc/gshadow. Every existing line is kept, each
 * file is replaced atomically with its mode and owner, and ids that the
 * config leaves out are allocated deterministically: the first free one
 * from 1000 (a user's private group gets the same number when it is free).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "image/finalize.h"


/* ---- the account databases as lines ------------------------------------- */

struct db {
    const char *path;
    char **lines;
    bool changed;
};

static int db_load(struct lapis_image_build *b, struct db *d, const char *path)
{
    _cleanup_free_ char *text = NULL;
    int r = fin_read(b, path, &text, NULL);

    d->path = path;
    d->lines = NULL;
    d->changed = false;
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return lapis_err(&b->diag, r, "cannot read %s in the image: %s", path, strerror(-r));
    d->lines = strv_split(text, "\n");
    return 0;
}

/* The line of name (field 1), or NULL. */
static char **db_find(struct db *d, const char *name)
{
    size_t n = strlen(name);
    for (char **l = d->lines; l && *l; l++)
        if (!strncmp(*l, name, n) && (*l)[n] == ':')
            return l;
    return NULL;
}

static bool db_has_id(struct db *d, long id)
{
    for (char **l = d->lines; l && *l; l++) {
        const char *c = strchr(*l, ':');
        if (c && (c = strchr(c + 1, ':')) && strtol(c + 1, NULL, 10) == id)
            return true;
    }
    return false;
}

static long db_id(struct db *d, const char *name)
{
    char **l = db_find(d, name);
    const char *c = l ? strchr(*l, ':') : NULL;
    return c && (c = strchr(c + 1, ':')) ? strtol(c + 1, NULL, 10) : -1;
}

static void db_add(struct db *d, char *line)
{
    strv_push(&d->lines, line);
    d->changed = true;
}

/* Replace field idx (0-based) of *line. */
static void set_field(char **line, unsigned idx, const char *value)
{
    _cleanup_strv_ char **f = NULL;
    const char *p = *line;
    size_t cap = 0, n = 0;
    char **parts = NULL;

    for (;;) {
        const char *c = strchr(p, ':');
        if (n + 1 >= cap)
            parts = xrealloc(parts, (cap = cap * 2 + 10) * sizeof(char *));
        parts[n++] = c ? xstrndup(p, (size_t)(c - p)) : xstrdup(p);
        if (!c)
            break;
        p = c + 1;
    }
    while (n <= idx)
        parts[n++] = xstrdup("");
    parts[n] = NULL;
    f = parts;
    free(f[idx]);
    f[idx] = xstrdup(value);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(f[i]) + 1;
    char *out = xmalloc(len);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, ":");
        strcat(out, f[i]);
    }
    free(*line);
    *line = out;
}

static const char *get_field(const char *line, unsigned idx, char *buf, size_t size)
{
    for (unsigned i = 0; i < idx && line; i++)
        line = (line = strchr(line, ':')) ? line + 1 : NULL;
    size_t n = line ? strcspn(line, ":") : 0;
    if (n >= size)
        n = size - 1;
    memcpy(buf, line ? line : "", n);
    buf[n] = '\0';
    return buf;
}

static int db_save(struct lapis_image_build *b, struct db *d, mode_t mode, gid_t gid)
{
    struct stat st;
    size_t len = 0;

    if (!d->changed)
        return 0;
    if (fin_stat(b, d->path, &st) == 0) {
        mode = st.st_mode & 07777;
        gid = st.st_gid;
    }
    for (char **l = d->lines; l && *l; l++)
        len += strlen(*l) + 1;
    _cleanup_free_ char *text = xmalloc(len + 1);
    char *p = text;
    *p = '\0';
    for (char **l = d->lines; l && *l; l++)
        p = stpcpy(stpcpy(p, *l), "\n");
    return fin_write(b, d->path, text, len, mode, 0, gid);
}

/* ---- system users ------------------------------------------------------ */

/* systemd-sysusers 252 dates new shadow entries today (it ignores
 * SOURCE_DATE_EPOCH): clamp "last changed" to the epoch's day. */
static int clamp_lastchg(struct lapis_image_build *b)
{
    struct db d;
    long day = (long)(b->epoch / 86400);
    char buf[32], val[32];
    int r = db_load(b, &d, "/etc/shadow");

    for (char **l = d.lines; r >= 0 && l && *l; l++) {
        if (strtol(get_field(*l, 2, buf, sizeof(buf)), NULL, 10) <= day)
            continue;
        snprintf(val, sizeof(val), "%ld", day);
        set_field(l, 2, val);
        d.changed = true;
    }
    if (r >= 0)
        r = db_save(b, &d, 0640, 0);
    lapis_strv_free(d.lines);
    return r;
}

int fin_sysusers(struct lapis_image_build *b)
{
    _cleanup_free_ char *root = xasprintf("--root=%s", b->rootdir);
    char *argv[] = { "systemd-sysusers", root, NULL };
    int r;

    if (!fin_exists(b, "/usr/lib/sysusers.d"))
        return 0;
    if ((r = fin_run(b, "systemd", argv, NULL)) < 0)
        return r;
    return clamp_lastchg(b);
}

/* ---- groups and users ---------------------------------------------------- */

struct accounts {
    struct db passwd, group, shadow, gshadow;
};

static void accounts_free(struct accounts *a)
{
    lapis_strv_free(a->passwd.lines);
    lapis_strv_free(a->group.lines);
    lapis_strv_free(a->shadow.lines);
    lapis_strv_free(a->gshadow.lines);
}

static long first_free(struct db *d, struct db *also)
{
    long id = 1000;
    while (db_has_id(d, id) || (also && db_has_id(also, id)))
        id++;
    return id;
}

static void add_group(struct accounts *a, const char *name, long gid)
{
    db_add(&a->group, xasprintf("%s:x:%ld:", name, gid));
    if (a->gshadow.lines)
        db_add(&a->gshadow, xasprintf("%s:!::", name));
}

static int ensure_group(struct lapis_image_build *b, struct accounts *a,
                        const struct lapis_image_group *g)
{
    long gid = db_id(&a->group, g->name);

    if (gid >= 0) {
        if (g->gid >= 0 && g->gid != gid)
            return lapis_err(&b->diag, -LAPIS_E_CONFIG,
                             "os.groups: %s already exists with gid %ld, not %ld (drop the gid)",
                             g->name, gid, g->gid);
        return 0;
    }
    if (g->gid >= 0 && db_has_id(&a->group, g->gid))
        return lapis_err(&b->diag, -LAPIS_E_CONFIG,
                         "os.groups: %s: gid %ld is taken (choose another or leave it out)",
                         g->name, g->gid);
    add_group(a, g->name, g->gid >= 0 ? g->gid : first_free(&a->group, NULL));
    return 0;
}

/* Append user to the member list (last field) of group in db. */
static void add_member(struct db *d, const char *group, const char *user, unsigned field)
{
    char **l = db_find(d, group);
    char buf[4096];

    if (!l)
        return;
    get_field(*l, field, buf, sizeof(buf));
    _cleanup_strv_ char **members = strv_split(buf, ",");
    if (strv_contains(members, user))
        return;
    _cleanup_free_ char *v = *buf ? xasprintf("%s,%s", buf, user) : xstrdup(user);
    set_field(l, field, v);
    d->changed = true;
}

static const char *user_shell(struct lapis_image_build *b, const struct lapis_image_user *u)
{
    if (u->shell)
        return u->shell;
    return fin_exists(b, "/usr/bin/bash") ? "/bin/bash" : "/bin/sh";
}

static int new_user(struct lapis_image_build *b, struct accounts *a,
                    const struct lapis_image_user *u, const char *home)
{
    long uid = u->uid >= 0 ? u->uid : first_free(&a->passwd, &a->group);
    long gid = db_id(&a->group, u->name);

    if (u->uid >= 0 && db_has_id(&a->passwd, uid))
        return lapis_err(&b->diag, -LAPIS_E_CONFIG,
                         "os.users: %s: uid %ld is taken (choose another or leave it out)",
                         u->name, uid);
    if (gid < 0) {
        gid = db_has_id(&a->group, uid) ? first_free(&a->group, NULL) : uid;
        add_group(a, u->name, gid);
    }
    db_add(&a->passwd, xasprintf("%s:x:%ld:%ld::%s:%s", u->name, uid, gid, home,
                                 user_shell(b, u)));
    db_add(&a->shadow, xasprintf("%s:!:%lld:0:99999:7:::", u->name, b->epoch / 86400));
    return 0;
}

/* The password: the config's hash, else locked ("!"); an account already
 * locked ("*", "!...") stays as it is. */
static void set_password(struct accounts *a, const struct lapis_image_user *u)
{
    char **l = db_find(&a->shadow, u->name);
    char buf[16];

    if (!l)
        return;
    get_field(*l, 1, buf, sizeof(buf));
    if (!u->password_hash && (buf[0] == '*' || buf[0] == '!'))
        return;
    set_field(l, 1, u->password_hash ? u->password_hash : "!");
    a->shadow.changed = true;
}

static int user_home(struct lapis_image_build *b, const struct lapis_image_user *u,
                     const char *home, uid_t uid, gid_t gid)
{
    _cleanup_free_ char *ssh = xasprintf("%s/.ssh", home), *keys = NULL, *ak = NULL;
    size_t len = 0;
    int r;

    if ((r = fin_mkdir(b, home, 0700, uid, gid)) < 0 || !u->ssh_keys)
        return r;
    if ((r = fin_mkdir(b, ssh, 0700, uid, gid)) < 0)
        return r;
    for (char **k = u->ssh_keys; *k; k++)
        len += strlen(*k) + 1;
    keys = xmalloc(len + 1);
    char *p = keys;
    *p = '\0';
    for (char **k = u->ssh_keys; *k; k++)
        p = stpcpy(stpcpy(p, *k), "\n");
    ak = xasprintf("%s/authorized_keys", ssh);
    return fin_write(b, ak, keys, len, 0600, uid, gid);
}

static int apply_user(struct lapis_image_build *b, struct accounts *a,
                      const struct lapis_image_user *u)
{
    _cleanup_free_ char *home = u->home ? xstrdup(u->home)
                              : !strcmp(u->name, "root") ? xstrdup("/root")
                              : xasprintf("/home/%s", u->name);
    char buf[64];
    int r;

    if (!db_find(&a->passwd, u->name) && (r = new_user(b, a, u, home)) < 0)
        return r;
    if (!db_find(&a->shadow, u->name))
        db_add(&a->shadow, xasprintf("%s:!:%lld:0:99999:7:::", u->name, b->epoch / 86400));
    set_password(a, u);
    for (char **g = u->groups; g && *g; g++) {
        if (!db_find(&a->group, *g))
            return lapis_err(&b->diag, -LAPIS_E_CONFIG,
                             "os.users: %s: group %s does not exist (add it under os.groups)",
                             u->name, *g);
        add_member(&a->group, *g, u->name, 3);
        add_member(&a->gshadow, *g, u->name, 3);
    }
    char **pl = db_find(&a->passwd, u->name);
    uid_t uid = (uid_t)strtol(get_field(*pl, 2, buf, sizeof(buf)), NULL, 10);
    gid_t gid = (gid_t)strtol(get_field(*pl, 3, buf, sizeof(buf)), NULL, 10);
    return user_home(b, u, get_field(*pl, 5, buf, sizeof(buf)), uid, gid);
}

static gid_t shadow_gid(struct accounts *a)
{
    long g = db_id(&a->group, "shadow");
    return g >= 0 ? (gid_t)g : 0;
}

int fin_users(struct lapis_image_build *b)
{
    struct accounts a = { 0 };
    int r;

    if (!b->conf || (!b->conf->nusers && !b->conf->ngroups))
        return 0;
    if ((r = db_load(b, &a.passwd, "/etc/passwd")) >= 0 &&
        (r = db_load(b, &a.group, "/etc/group")) >= 0 &&
        (r = db_load(b, &a.shadow, "/etc/shadow")) >= 0)
        r = db_load(b, &a.gshadow, "/etc/gshadow");
    for (size_t i = 0; r >= 0 && i < b->conf->ngroups; i++)
        r = ensure_group(b, &a, &b->conf->groups[i]);
    for (size_t i = 0; r >= 0 && i < b->conf->nusers; i++)
        r = apply_user(b, &a, &b->conf->users[i]);
    if (r >= 0 && (r = db_save(b, &a.group, 0644, 0)) >= 0 &&
        (r = db_save(b, &a.gshadow, 0640, shadow_gid(&a))) >= 0 &&
        (r = db_save(b, &a.passwd, 0644, 0)) >= 0)
        r = db_save(b, &a.shadow, 0640, shadow_gid(&a));
    accounts_free(&a);
    return r;
}

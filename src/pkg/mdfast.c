/*
 * primary.xml without expat: half of libsolv's rpm-md parse is expat's
 * tokenizer and the element lookup around it, for a document whose shape
 * createrepo_c fixes. This parser reads that shape only, and makes the same
 * libsolv calls as repo_add_rpmmd() (ext/repo_rpmmd.c) in the same order, so
 * the repo gets the same solvables with the same data.
 *
 * It is strict: one package is read and checked whole (well-formed tags,
 * known elements and attributes only, no duplicates, the five predefined
 * entities, valid UTF-8, no control characters, no CR, checksums that
 * decode) before anything of it reaches the pool. At anything else (a
 * comment, a DOCTYPE, a character reference, an element it does not know,
 * a truncated document) it stops there and hands the rest of the document,
 * from that package on, to repo_add_rpmmd(), which parses it into the same
 * repodata or fails with its own message, line numbers counted in the whole
 * document. So it never accepts what libsolv would refuse, and never reads
 * differently what libsolv would accept. LAPIS_MD_FAST=0 turns it off.
 *
 * The reading and checking (the scan) runs a few slots of packages ahead of
 * the libsolv calls (the emission) on a thread of its own; the emission,
 * the only one that touches the pool, stays in document order
 * (LAPIS_MD_PIPE=0: both on the caller's thread).
 */
#include "pkg/internal.h"
#include <errno.h>
#include <solv/chksum.h>
#include <solv/pool_parserpmrichdep.h>
#include <solv/repo_rpmmd.h>
#include <solv/util.h>

#define MF_READ_BLOCK (128u << 10)
#define MF_MAX_ATTRS 6
#define MF_CHK_MAX 256
/* Packages per repodata. A batch's data moves into its repodata's compact
 * form when the batch is full, so the peak holds one batch twice, not all of
 * them (libsolv's parser internalizes once, at the end). Each batch has a
 * repodata of its own because internalizing rewrites all of a repodata's
 * entries: one repodata internalized every 8192 packages spent 17% of a cold
 * makecache re-copying the batches before. repo_write() merges the
 * repodatas into the same .solv bytes. Cold makecache of 63k packages: peak
 * RSS as with one repodata (57 MB), ~0.2 s less. */
#define MF_BATCH 4096

enum mf_el {
    EL_NONE, EL_PACKAGE, EL_FORMAT, EL_NAME, EL_ARCH, EL_VERSION, EL_CHECKSUM, EL_SUMMARY,
    EL_DESCRIPTION, EL_PACKAGER, EL_URL, EL_TIME, EL_SIZE, EL_LOCATION, EL_LICENSE,
    EL_VENDOR, EL_GROUP, EL_BUILDHOST, EL_SOURCERPM, EL_HEADERRANGE, EL_DEPS, EL_ENTRY,
    EL_FILE,
};

/* What an element holds: text (content), nothing (empty: self-closing or
 * blanks), or child elements. */
enum mf_body { BODY_TEXT, BODY_EMPTY, BODY_CHILDREN };

/* The dependency blocks, in the Solvable field each fills. */
enum mf_dep { DEP_PROVIDES, DEP_REQUIRES, DEP_OBSOLETES, DEP_CONFLICTS, DEP_RECOMMENDS,
              DEP_SUPPLEMENTS, DEP_SUGGESTS, DEP_ENHANCES, NDEPS };

struct mf_elem {
    const char *name;
    unsigned char el, body, dep;
    const char *attrs[MF_MAX_ATTRS + 1]; /* the attributes it may have; an attribute's slot */
};

/* Elements of a package (libsolv reads those of <format> in the same state). */
static const struct mf_elem mf_elems[] = {
    { "name", EL_NAME, BODY_TEXT, 0, { NULL } },
    { "arch", EL_ARCH, BODY_TEXT, 0, { NULL } },
    { "version", EL_VERSION, BODY_EMPTY, 0, { "epoch", "ver", "rel", NULL } },
    { "checksum", EL_CHECKSUM, BODY_TEXT, 0, { "type", "pkgid", NULL } },
    { "summary", EL_SUMMARY, BODY_TEXT, 0, { NULL } },
    { "description", EL_DESCRIPTION, BODY_TEXT, 0, { NULL } },
    { "packager", EL_PACKAGER, BODY_TEXT, 0, { NULL } },
    { "url", EL_URL, BODY_TEXT, 0, { NULL } },
    { "time", EL_TIME, BODY_EMPTY, 0, { "file", "build", NULL } },
    { "size", EL_SIZE, BODY_EMPTY, 0, { "package", "installed", "archive", NULL } },
    { "location", EL_LOCATION, BODY_EMPTY, 0, { "href", "xml:base", NULL } },
    { "format", EL_FORMAT, BODY_CHILDREN, 0, { NULL } },
    { "rpm:license", EL_LICENSE, BODY_TEXT, 0, { NULL } },
    { "rpm:vendor", EL_VENDOR, BODY_TEXT, 0, { NULL } },
    { "rpm:group", EL_GROUP, BODY_TEXT, 0, { NULL } },
    { "rpm:buildhost", EL_BUILDHOST, BODY_TEXT, 0, { NULL } },
    { "rpm:sourcerpm", EL_SOURCERPM, BODY_TEXT, 0, { NULL } },
    { "rpm:header-range", EL_HEADERRANGE, BODY_EMPTY, 0, { "start", "end", NULL } },
    { "rpm:provides", EL_DEPS, BODY_CHILDREN, DEP_PROVIDES, { NULL } },
    { "rpm:requires", EL_DEPS, BODY_CHILDREN, DEP_REQUIRES, { NULL } },
    { "rpm:obsoletes", EL_DEPS, BODY_CHILDREN, DEP_OBSOLETES, { NULL } },
    { "rpm:conflicts", EL_DEPS, BODY_CHILDREN, DEP_CONFLICTS, { NULL } },
    { "rpm:recommends", EL_DEPS, BODY_CHILDREN, DEP_RECOMMENDS, { NULL } },
    { "rpm:supplements", EL_DEPS, BODY_CHILDREN, DEP_SUPPLEMENTS, { NULL } },
    { "rpm:suggests", EL_DEPS, BODY_CHILDREN, DEP_SUGGESTS, { NULL } },
    { "rpm:enhances", EL_DEPS, BODY_CHILDREN, DEP_ENHANCES, { NULL } },
    { "file", EL_FILE, BODY_TEXT, 0, { "type", NULL } },
};
static const struct mf_elem mf_package = { "package", EL_PACKAGE, BODY_CHILDREN, 0, { "type", NULL } };
static const struct mf_elem mf_entry = { "rpm:entry", EL_ENTRY, BODY_EMPTY, 0,
                                         { "name", "flags", "epoch", "ver", "rel", "pre", NULL } };
static const struct mf_elem mf_root = { "metadata", EL_NONE, BODY_CHILDREN, 0,
                                        { "xmlns", "xmlns:rpm", "packages", NULL } };

enum { A_EPOCH, A_VER, A_REL };                           /* <version> */
enum { E_NAME, E_FLAGS, E_EPOCH, E_VER, E_REL, E_PRE };   /* <rpm:entry> */

/* One element of the package being read: text and attribute values decoded
 * and NUL-terminated in the arena. */
struct mf_ev {
    const struct mf_elem *e;
    const char *text;
    const char *a[MF_MAX_ATTRS];
    Id chktype;
    const unsigned char *chk;
    const char *key;    /* <rpm:entry>: its attributes but pre, as the dependency cache keys them */
    unsigned klen;      /* 0: too long to be cached */
    uint32_t khash;
};

/* Dependencies repeat (Debian's 63k packages: 455k entries, 172k different),
 * and an entry met before gets the Id it got then, without the string and
 * relation lookups: the same pool, as the lookups would only have found
 * what the first one made. One entry per hash: bounded, 2 MB at most. */
#define MF_DEPCACHE_SIZE (1u << 15)
#define MF_DEPKEY_MAX 55
struct mf_depslot {
    uint32_t hash;
    Id id;
    unsigned char len;
    char key[MF_DEPKEY_MAX];
};

struct mf {
    Pool *pool;
    Repo *repo;
    Repodata *data;
    FILE *in;
    char *buf;          /* buf[pos..len): read, not yet parsed */
    size_t len, cap, pos;
    bool eof;
    char *prologue;     /* what came before the first package: the root's start tag */
    size_t plen;
    size_t npkgs;
    long lines;         /* newlines in what was parsed after the prologue, */
    size_t col;         /* and the characters after the last of them (or the prologue) */
    char *arena;        /* one package's decoded strings */
    size_t alen, acap;
    struct mf_ev *ev;
    size_t nev, evcap;
    struct mf_depslot *deps; /* the emission's dependency cache (MF_DEPCACHE_SIZE) */
    char *evr, *dir;    /* scratch: an EVR being built, a file's directory */
    size_t evrcap, dircap;
    Id lastdir;         /* the directory of the file before (libsolv's one-entry cache) */
    char *lastdirstr;
    size_t lastcap;
};

/* ---- reading ------------------------------------------------------------ */

static bool mf_fill(struct mf *m)
{
    size_t got;
    if (m->eof)
        return false;
    if (m->pos > 0 && m->prologue) { /* keep only what is not parsed yet */
        memmove(m->buf, m->buf + m->pos, m->len - m->pos);
        m->len -= m->pos;
        m->pos = 0;
    }
    if (m->cap - m->len < MF_READ_BLOCK + 1) {
        m->cap = m->len + 2 * MF_READ_BLOCK + 1;
        m->buf = xrealloc(m->buf, m->cap);
    }
    got = fread(m->buf + m->len, 1, MF_READ_BLOCK, m->in);
    m->len += got;
    m->buf[m->len] = 0;
    if (got == 0)
        m->eof = true;
    return got > 0;
}

/* The end of the package starting at pos (just past its </package>), reading on as needed. */
static size_t mf_package_end(struct mf *m)
{
    static const char close[] = "</package>";
    size_t from = m->pos;
    for (;;) {
        const char *hit = memmem(m->buf + from, m->len - from, close, sizeof(close) - 1);
        if (hit)
            return (size_t)(hit - m->buf) + sizeof(close) - 1;
        from = m->len > sizeof(close) ? m->len - sizeof(close) : m->pos;
        from = from < m->pos ? m->pos : from;
        size_t off = from - m->pos;
        if (!mf_fill(m))
            return 0;
        from = m->pos + off;
    }
}

/* ---- the lexer: one package's bytes, checked ------------------------------ */

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n'; }

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && is_blank(*p))
        p++;
    return p;
}

/* Bytes of a valid UTF-8 sequence starting at p (lead byte >= 0x80), or 0.
 * U+FFFE and U+FFFF are not XML characters. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && c == 0xef && p[1] == 0xbf && p[2] >= 0xbe)
        return 0;
    return n;
}

/* One of the five predefined entities at p ('&'): its character, its length in *n. */
static char entity(const char *p, const char *end, size_t *n)
{
    static const struct { const char *s; size_t l; char c; } ents[] = {
        { "&amp;", 5, '&' }, { "&lt;", 4, '<' }, { "&gt;", 4, '>' }, { "&quot;", 6, '"' },
        { "&apos;", 6, '\'' },
    };
    for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
        if ((size_t)(end - p) >= ents[i].l && memcmp(p, ents[i].s, ents[i].l) == 0)
            return *n = ents[i].l, ents[i].c;
    return 0;
}

/* Decode text [p, end) into the arena, NUL-terminated; NULL when it is not
 * plain: a character or entity reference, a control character, CR, bad UTF-8,
 * "]]>", or (in an attribute value) a tab or newline, which XML would
 * normalise. */
/* Bytes mf_decode() copies as they are: printable ASCII but & < ]. */
static bool plain_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '&' && c != '<' && c != ']';
}

static const char *mf_decode(struct mf *m, const char *p, const char *end, bool attr)
{
    char *out = m->arena + m->alen, *o = out;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        size_t n = 1;
        if (plain_byte(c)) {
            *o++ = *p++;
            continue;
        }
        if (c == '&') {
            if (!(*o++ = entity(p, end, &n)))
                return NULL;
            p += n;
            continue;
        }
        if (c < 0x20 && (attr || (c != '\t' && c != '\n')))
            return NULL;
        if (c == '<' || (c == ']' && end - p >= 3 && p[1] == ']' && p[2] == '>'))
            return NULL;
        if (c >= 0x80 && !(n = utf8_len((const unsigned char *)p, (const unsigned char *)end)))
            return NULL;
        memcpy(o, p, n);
        o += n;
        p += n;
    }
    *o++ = 0;
    m->alen = (size_t)(o - m->arena);
    return out;
}

struct mf_tag {
    const char *name;
    size_t nlen;
    bool empty; /* <x/> */
    const char *a[MF_MAX_ATTRS];
};

static const char *tag_name(const char *p, const char *end, struct mf_tag *t)
{
    t->name = p;
    while (p < end && !is_blank(*p) && *p != '/' && *p != '>' && *p != '=')
        p++;
    t->nlen = (size_t)(p - t->name);
    return t->nlen ? p : NULL;
}

/* s (NUL-terminated) is exactly the len bytes at p (which may hold a NUL:
 * fuzz_mdfast found strncmp stopping there, then a read past s). */
static bool same_name(const char *s, const char *p, size_t len)
{
    return len && s[0] == p[0] && strnlen(s, len + 1) == len && memcmp(s, p, len) == 0;
}

static int attr_slot(const struct mf_elem *e, const char *name, size_t len)
{
    for (int i = 0; e->attrs[i]; i++)
        if (same_name(e->attrs[i], name, len))
            return i;
    return -1;
}

/* One attribute at p (past the blanks before it) into its slot of t. */
static const char *tag_attr(struct mf *m, const char *p, const char *end, const struct mf_elem *e,
                            struct mf_tag *t)
{
    const char *name = p, *q;
    int slot;
    while (p < end && !is_blank(*p) && *p != '=' && *p != '>' && *p != '/')
        p++;
    if ((slot = attr_slot(e, name, (size_t)(p - name))) < 0 || t->a[slot])
        return NULL; /* unknown, or twice (an XML error) */
    p = skip_blanks(p, end);
    if (p >= end || *p != '=')
        return NULL;
    p = skip_blanks(p + 1, end);
    if (p >= end || (*p != '"' && *p != '\''))
        return NULL;
    if (!(q = memchr(p + 1, *p, (size_t)(end - p - 1))))
        return NULL;
    if (!(t->a[slot] = mf_decode(m, p + 1, q, true)))
        return NULL;
    return q + 1;
}

/* A start tag at p ('<') of element e (its name already matched): its
 * attributes, and whether it is <x/>. Returns the byte after '>', or NULL. */
static const char *tag_rest(struct mf *m, const char *p, const char *end, const struct mf_elem *e,
                            struct mf_tag *t)
{
    for (;;) {
        const char *q = skip_blanks(p, end);
        if (q >= end)
            return NULL;
        if (*q == '>')
            return q + 1;
        if (*q == '/')
            return q + 1 < end && q[1] == '>' ? (t->empty = true, q + 2) : NULL;
        if (q == p || !(p = tag_attr(m, q, end, e, t))) /* attributes need a blank before them */
            return NULL;
    }
}

static bool name_is(const struct mf_tag *t, const char *name)
{
    return same_name(name, t->name, t->nlen);
}

static const struct mf_elem *child_elem(const struct mf_tag *t, const struct mf_elem *parent)
{
    if (parent->el == EL_DEPS)
        return name_is(t, mf_entry.name) ? &mf_entry : NULL;
    for (size_t i = 0; i < sizeof(mf_elems) / sizeof(mf_elems[0]); i++)
        if (name_is(t, mf_elems[i].name))
            return parent->el == EL_FORMAT && mf_elems[i].el == EL_FORMAT ? NULL : &mf_elems[i];
    return NULL;
}

/* </name> at p. */
static const char *end_tag(const char *p, const char *end, const char *name)
{
    size_t l = strlen(name);
    if ((size_t)(end - p) < l + 3 || p[0] != '<' || p[1] != '/' || memcmp(p + 2, name, l) != 0)
        return NULL;
    p = skip_blanks(p + 2 + l, end);
    return p < end && *p == '>' ? p + 1 : NULL;
}

static struct mf_ev *ev_add(struct mf *m, const struct mf_elem *e, const struct mf_tag *t)
{
    struct mf_ev *v;
    if (m->nev == m->evcap) {
        m->evcap = m->evcap ? 2 * m->evcap : 64;
        m->ev = xrealloc(m->ev, m->evcap * sizeof(*m->ev));
    }
    v = &m->ev[m->nev++];
    memset(v, 0, sizeof(*v));
    v->e = e;
    memcpy(v->a, t->a, sizeof(v->a));
    return v;
}

/* <checksum type="T">HEX</checksum>: what libsolv would refuse is not read here. */
static bool ev_checksum(struct mf *m, struct mf_ev *v)
{
    const char *str = v->text;
    unsigned char *chk = (unsigned char *)m->arena + m->alen;
    int l;
    if (!v->a[0] || !*v->a[0] || !(v->chktype = solv_chksum_str2type(v->a[0])))
        return false;
    l = solv_chksum_len(v->chktype);
    if (!l || l > MF_CHK_MAX || solv_hex2bin(&str, chk, l) != l || v->text[2 * l])
        return false;
    v->chk = chk;
    m->alen += (size_t)l;
    return true;
}

static const char *read_element(struct mf *m, const char *p, const char *end,
                                const struct mf_elem *e, const struct mf_tag *t);

/* The entry's name, flags, epoch, version and release, each NUL-ended or
 * \1 when absent (no text has control characters), into the arena, hashed
 * (FNV-1a): the scan's share of the dependency cache. */
static void dep_key(struct mf *m, struct mf_ev *v)
{
    static const int fields[] = { E_NAME, E_FLAGS, E_EPOCH, E_VER, E_REL };
    char *k = m->arena + m->alen, *p = k;
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *a = v->a[fields[i]];
        if (a)
            p = stpcpy(p, a) + 1;
        else
            *p++ = 1;
    }
    v->klen = (size_t)(p - k) <= MF_DEPKEY_MAX ? (unsigned)(p - k) : 0;
    if (!v->klen)
        return;
    for (const char *c = k; c < p; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    v->key = k;
    v->khash = h;
    m->alen += v->klen;
}

/* The children of e up to its end tag; only blanks between them. */
static const char *read_children(struct mf *m, const char *p, const char *end,
                                 const struct mf_elem *e)
{
    for (;;) {
        struct mf_tag t = { 0 };
        const struct mf_elem *c;
        p = skip_blanks(p, end);
        if (p >= end || *p != '<')
            return NULL;
        if (p + 1 < end && p[1] == '/')
            return end_tag(p, end, e->name);
        if (!(p = tag_name(p + 1, end, &t)) || !(c = child_elem(&t, e)))
            return NULL;
        if (!(p = tag_rest(m, p, end, c, &t)) || !(p = read_element(m, p, end, c, &t)))
            return NULL;
    }
}

/* The text of e (its start tag read) up to its end tag, decoded. */
static const char *read_text(struct mf *m, const char *p, const char *end, const struct mf_elem *e,
                             const struct mf_tag *t, const char **text)
{
    const char *lt;
    if (t->empty)
        return *text = mf_decode(m, p, p, false), p;
    if (!(lt = memchr(p, '<', (size_t)(end - p))) || !(*text = mf_decode(m, p, lt, false)))
        return NULL;
    return end_tag(lt, end, e->name);
}

static const char *read_element(struct mf *m, const char *p, const char *end,
                                const struct mf_elem *e, const struct mf_tag *t)
{
    struct mf_ev *v;
    const char *text = NULL;

    if (e->body == BODY_CHILDREN) {
        if (e->el == EL_DEPS)
            ev_add(m, e, t);
        return t->empty ? p : read_children(m, p, end, e);
    }
    if (!(p = read_text(m, p, end, e, t, &text)))
        return NULL;
    if (e->body == BODY_EMPTY && *skip_blanks(text, text + strlen(text)))
        return NULL; /* text where libsolv reads none: not the usual shape */
    v = ev_add(m, e, t);
    v->text = text;
    if (e->el == EL_CHECKSUM && !ev_checksum(m, v))
        return NULL;
    if (e->el == EL_DESCRIPTION && strstr(text, "\nAuthors:\n--------\n"))
        return NULL; /* SUSE's author section: libsolv splits it off */
    if (e->el == EL_ENTRY && !v->a[E_NAME])
        m->nev--; /* libsolv skips an entry without a name */
    else if (e->el == EL_ENTRY)
        dep_key(m, v);
    return p;
}

/* An empty arena for the strings of raw input bytes: never grown while
 * they are decoded, so the pointers into it stay good. */
static void arena_reset(struct mf *m, size_t raw)
{
    size_t need = 2 * raw + 64;
    if (m->acap < need) {
        m->acap = need;
        m->arena = xrealloc(m->arena, need);
    }
    m->alen = 0;
}

/* Read the package at buf[pos..pend) into events after those there are, its
 * strings into the arena, which has room for them; false: not the usual shape. */
static bool mf_scan_package(struct mf *m, size_t pend)
{
    const char *p = m->buf + m->pos, *end = m->buf + pend;
    struct mf_tag t = { 0 };

    /* fuzz_mdfast: ",package ...>" was read as a package, the '<' never looked at */
    if (*p != '<' || !(p = tag_name(p + 1, end, &t)) || !name_is(&t, mf_package.name))
        return false;
    if (!(p = tag_rest(m, p, end, &mf_package, &t)) || t.empty)
        return false;
    return read_children(m, p, end, &mf_package) == end;
}

/* ---- into the pool, as repo_add_rpmmd() does ------------------------------ */

/* makeevr_atts() */
static Id make_evr(Pool *pool, const char *e, const char *v, const char *r, char *space)
{
    const char *v2;
    char *c = space;
    if (e && (!*e || strcmp(e, "0") == 0))
        e = NULL;
    if (v && !e) {
        for (v2 = v; *v2 >= '0' && *v2 <= '9'; v2++)
            ;
        if (v2 > v && *v2 == ':')
            e = "0";
    }
    if (e)
        c = stpcpy(c, e), *c++ = ':';
    if (v)
        c = stpcpy(c, v);
    if (r)
        *c++ = '-', c = stpcpy(c, r);
    *c = 0;
    return *space ? pool_str2id(pool, space, 1) : 0;
}

static char *scratch(char **buf, size_t *cap, size_t n)
{
    if (*cap < n) {
        *cap = n + 256;
        *buf = xrealloc(*buf, *cap);
    }
    return *buf;
}

static char *evr_space(struct mf *m, const char *e, const char *v, const char *r)
{
    size_t l = 8 + (e ? strlen(e) : 0) + (v ? strlen(v) : 0) + (r ? strlen(r) : 0);
    return scratch(&m->evr, &m->evrcap, l);
}

/* The dependency an entry names (0: a rich dependency libsolv refuses). */
static Id dep_id(struct mf *m, const struct mf_ev *v)
{
    static const char *const flagtab[] = { "GT", "EQ", "GE", "LT", "NE", "LE" };
    const char *n = v->a[E_NAME], *f = v->a[E_FLAGS];
    Id id;
    int flags;

    if (!f && n[0] == '(')
        return pool_parserpmrichdep(m->pool, n);
    id = pool_str2id(m->pool, n, 1);
    if (f) {
        char *space = evr_space(m, v->a[E_EPOCH], v->a[E_VER], v->a[E_REL]);
        Id evr = make_evr(m->pool, v->a[E_EPOCH], v->a[E_VER], v->a[E_REL], space);
        for (flags = 0; flags < 6; flags++)
            if (strcmp(f, flagtab[flags]) == 0)
                break;
        flags = flags < 6 ? flags + 1 : 0;
        id = pool_rel2id(m->pool, id, evr, flags, 1);
    }
    return id;
}

static Id dep_cached(struct mf *m, const struct mf_ev *v)
{
    struct mf_depslot *d;
    Id id;

    if (!v->klen)
        return dep_id(m, v);
    if (!m->deps)
        m->deps = xcalloc(MF_DEPCACHE_SIZE, sizeof(*m->deps));
    d = &m->deps[v->khash & (MF_DEPCACHE_SIZE - 1)];
    if (d->id && d->hash == v->khash && d->len == v->klen && memcmp(d->key, v->key, v->klen) == 0)
        return d->id;
    if ((id = dep_id(m, v))) {
        d->hash = v->khash, d->id = id, d->len = (unsigned char)v->klen;
        memcpy(d->key, v->key, v->klen);
    }
    return id;
}

/* adddep() */
static Offset add_dep(struct mf *m, Offset olddeps, const struct mf_ev *v, bool isreq)
{
    Id id, marker = isreq ? -SOLVABLE_PREREQMARKER : 0;

    if (isreq && v->a[E_PRE] && v->a[E_PRE][0] == '1')
        marker = SOLVABLE_PREREQMARKER;
    if (!(id = dep_cached(m, v)))
        return olddeps;
    return repo_addid_dep(m->repo, olddeps, id, marker);
}

static Offset *dep_field(Solvable *s, unsigned dep)
{
    Offset *f[NDEPS] = { &s->provides, &s->requires, &s->obsoletes, &s->conflicts,
                         &s->recommends, &s->supplements, &s->suggests, &s->enhances };
    return f[dep];
}

/* The STATE_FILE end: directory id (a one-entry cache, as libsolv keeps) and base name. */
static void add_file(struct mf *m, Id handle, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = scratch(&m->dir, &m->dircap, strlen(path) + 2);
    Id id;

    if (!slash) {
        repodata_add_dirstr(m->data, handle, SOLVABLE_FILELIST, repodata_str2dir(m->data, "/", 1),
                            path);
        return;
    }
    if (slash == path || path[0] != '/') /* "/x" and "a/x" too: libsolv puts a / first */
        dir[0] = '/', memcpy(dir + 1, path, (size_t)(slash - path)), dir[slash - path + 1] = 0;
    else
        memcpy(dir, path, (size_t)(slash - path)), dir[slash - path] = 0;
    if (m->lastdir && strcmp(m->lastdirstr, dir) == 0) {
        id = m->lastdir;
    } else {
        id = repodata_str2dir(m->data, dir, 1);
        strcpy(scratch(&m->lastdirstr, &m->lastcap, strlen(dir) + 1), dir);
        m->lastdir = id;
    }
    repodata_add_dirstr(m->data, handle, SOLVABLE_FILELIST, id, slash + 1);
}

static void emit_location(struct mf *m, Id handle, const struct mf_ev *v)
{
    const char *href = v->a[0], *base = v->a[1];
    int medianr = 0;
    if (!href)
        return;
    if (base && strncmp(base, "media:", 6) == 0) {
        size_t l = strlen(base);
        while (l && base[l - 1] >= '0' && base[l - 1] <= '9')
            l--;
        if (l && base[l - 1] == '#' && base[l])
            medianr = atoi(base + l);
    }
    repodata_set_location(m->data, handle, medianr, 0, href);
    if (base)
        repodata_set_poolstr(m->data, handle, SOLVABLE_MEDIABASE, base);
}

static void emit_numbers(struct mf *m, Id handle, const struct mf_ev *v)
{
    unsigned int t;
    if (v->e->el == EL_TIME && v->a[1] && (t = (unsigned)atoi(v->a[1])) != 0)
        repodata_set_num(m->data, handle, SOLVABLE_BUILDTIME, t);
    if (v->e->el == EL_SIZE && v->a[1])
        repodata_set_num(m->data, handle, SOLVABLE_INSTALLSIZE, strtoull(v->a[1], 0, 10));
    if (v->e->el == EL_SIZE && v->a[0])
        repodata_set_num(m->data, handle, SOLVABLE_DOWNLOADSIZE, strtoull(v->a[0], 0, 10));
    if (v->e->el == EL_HEADERRANGE && v->a[1] && (t = (unsigned)atoi(v->a[1])) != 0)
        repodata_set_num(m->data, handle, SOLVABLE_HEADEREND, t);
}

static void emit_text(struct mf *m, Id handle, const struct mf_ev *v)
{
    Repodata *d = m->data;
    const char *s = v->text;
    switch (v->e->el) {
    case EL_SUMMARY: repodata_set_str(d, handle, SOLVABLE_SUMMARY, s); break;
    case EL_DESCRIPTION: if (*s) repodata_set_str(d, handle, SOLVABLE_DESCRIPTION, s); break;
    case EL_PACKAGER: if (*s) repodata_set_poolstr(d, handle, SOLVABLE_PACKAGER, s); break;
    case EL_URL: if (*s) repodata_set_str(d, handle, SOLVABLE_URL, s); break;
    case EL_LICENSE: repodata_set_poolstr(d, handle, SOLVABLE_LICENSE, s); break;
    case EL_GROUP: repodata_set_poolstr(d, handle, SOLVABLE_GROUP, s); break;
    case EL_BUILDHOST: if (*s) repodata_set_str(d, handle, SOLVABLE_BUILDHOST, s); break;
    case EL_SOURCERPM: if (*s) repodata_set_sourcepkg(d, handle, s); break;
    case EL_CHECKSUM: repodata_set_bin_checksum(d, handle, SOLVABLE_CHECKSUM, v->chktype, v->chk); break;
    case EL_FILE: add_file(m, handle, s); break;
    default: break;
    }
}

static void emit_event(struct mf *m, Solvable *s, Id handle, const struct mf_ev *v, unsigned *dep)
{
    Pool *pool = m->pool;
    switch (v->e->el) {
    case EL_NAME: s->name = pool_str2id(pool, v->text, 1); break;
    case EL_ARCH: s->arch = pool_str2id(pool, v->text, 1); break;
    case EL_VENDOR: s->vendor = pool_str2id(pool, v->text, 1); break;
    case EL_VERSION:
        s->evr = make_evr(pool, v->a[A_EPOCH], v->a[A_VER], v->a[A_REL],
                          evr_space(m, v->a[A_EPOCH], v->a[A_VER], v->a[A_REL]));
        break;
    case EL_DEPS: *dep = v->e->dep; *dep_field(s, *dep) = 0; break;
    case EL_ENTRY: *dep_field(s, *dep) = add_dep(m, *dep_field(s, *dep), v, *dep == DEP_REQUIRES); break;
    case EL_LOCATION: emit_location(m, handle, v); break;
    case EL_TIME: case EL_SIZE: case EL_HEADERRANGE: emit_numbers(m, handle, v); break;
    default: emit_text(m, handle, v); break;
    }
}

static void mf_emit_package(struct mf *m)
{
    Pool *pool = m->pool;
    Id handle = repo_add_solvable(m->repo);
    Solvable *s = pool_id2solvable(pool, handle);
    unsigned dep = DEP_PROVIDES;

    for (size_t i = 0; i < m->nev; i++)
        emit_event(m, s, handle, &m->ev[i], &dep);
    if (!s->arch)
        s->arch = ARCH_NOARCH;
    if (!s->evr)
        s->evr = ID_EMPTY;
    if (s->name && s->arch != ARCH_SRC && s->arch != ARCH_NOSRC)
        s->provides = repo_addid_dep(m->repo, s->provides,
                                     pool_rel2id(pool, s->name, s->evr, REL_EQ, 1), 0);
    repo_rewrite_suse_deps(s, 0);
}

/* ---- the document --------------------------------------------------------- */

static bool mf_need(struct mf *m, size_t n)
{
    while (m->len - m->pos < n)
        if (!mf_fill(m))
            return false;
    return true;
}

/* The XML declaration createrepo_c writes (or none), then <metadata ...>. */
static bool mf_prologue(struct mf *m)
{
    static const char *const decls[] = { "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                                         "<?xml version='1.0' encoding='UTF-8'?>" };
    struct mf_tag t = { 0 };
    const char *p, *end, *gt;

    mf_need(m, 4096);
    p = m->buf;
    end = m->buf + m->len;
    for (size_t i = 0; i < 2; i++) /* one of them (fuzz_mdfast: it took one of each) */
        if ((size_t)(end - p) >= strlen(decls[i]) && memcmp(p, decls[i], strlen(decls[i])) == 0) {
            p += strlen(decls[i]);
            break;
        }
    p = skip_blanks(p, end);
    if (!(gt = memchr(p, '>', (size_t)(end - p))) || *p != '<' || !(p = tag_name(p + 1, gt + 1, &t)))
        return false;
    arena_reset(m, (size_t)(gt + 1 - m->buf));
    if (!name_is(&t, mf_root.name) || tag_rest(m, p, gt + 1, &mf_root, &t) != gt + 1 || t.empty)
        return false;
    /* the prologue, which libsolv is handed first should the usual shape end */
    m->pos = m->plen = (size_t)(gt + 1 - m->buf);
    m->prologue = xmalloc(m->plen);
    memcpy(m->prologue, m->buf, m->plen);
    return true;
}

/* After the packages: </metadata>, blanks, the end of the input. pos stays
 * at </metadata> until all of it is read, so that anything else there (a
 * comment, junk) goes to libsolv with the end tag before it. */
static bool mf_epilogue(struct mf *m)
{
    const char *p;
    size_t from;
    if (!mf_need(m, 11) || !(p = end_tag(m->buf + m->pos, m->buf + m->len, mf_root.name)))
        return false;
    from = (size_t)(p - m->buf) - m->pos; /* offset from pos, which a fill may move */
    do { /* by position: a NUL there is junk, not the end (fuzz_mdfast) */
        if (skip_blanks(m->buf + m->pos + from, m->buf + m->len) != m->buf + m->len)
            return false;
        from = m->len - m->pos;
    } while (mf_fill(m));
    m->pos = m->len;
    return true;
}

/* pos moves on to to: count the lines and the column passed. */
/* Characters, as expat counts columns: UTF-8 continuation bytes are not
 * (fuzz_mdfast: a two-byte character put libsolv's column one off). */
static size_t chars_in(const char *p, const char *end)
{
    size_t n = 0;
    for (; p < end; p++)
        n += ((unsigned char)*p & 0xc0) != 0x80;
    return n;
}

static void mf_advance(struct mf *m, size_t to)
{
    const char *p = m->buf + m->pos, *end = m->buf + to, *last = NULL;
    while ((p = memchr(p, '\n', (size_t)(end - p)))) {
        m->lines++;
        last = p++;
    }
    m->col = last ? chars_in(last + 1, end) : m->col + chars_in(m->buf + m->pos, end);
    m->pos = to;
}

/* The batch is full: into its compact form, and the next one into a new
 * repodata, whose directory ids are its own (the one-entry cache goes). The
 * file lists are filtered in every batch; the meta key that says so goes
 * with the last (as libsolv puts it on its one repodata). */
static void mf_next_batch(struct mf *m)
{
    repodata_free_dircache(m->data);
    repodata_set_filelisttype(m->data, REPODATA_FILELIST_FILTERED);
    repodata_internalize(m->data);
    m->data = repo_add_repodata(m->repo, 0);
    m->lastdir = 0;
}

/* ---- the pipeline: a scan thread reads packages, the caller emits them -- */

/* Reading and checking a package (the scan) is a third of the parse, putting
 * it into the pool (the emission) the rest; the scan runs ahead on a thread
 * of its own and hands packages over in slots of up to 64. The pool is only
 * ever the caller's. The emission is in document order, so the calls into
 * libsolv are the same as without the thread (which is the path when the
 * thread cannot be made). */
#define MF_SLOTS 16
#define MF_SLOT_PKGS 64
#define MF_SLOT_ARENA (256u << 10)

struct mf_slot {
    char *arena;
    size_t alen, acap;
    struct mf_ev *ev;
    size_t nev, evcap;
    size_t npkgs, ends[MF_SLOT_PKGS]; /* where each package's events end */
};

struct mf_pipe {
    struct mf *scan, *emit;
    bool threaded;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct mf_slot slots[MF_SLOTS];
    size_t head, tail; /* [tail, head): scanned, not yet emitted; the scan fills head */
    bool done, whole;  /* the scan ended; it had read the whole document */
};

/* The scan's arena and events are a slot's while it fills it. */
static void slot_swap(struct mf *m, struct mf_slot *s)
{
    char *a = m->arena;
    struct mf_ev *ev = m->ev;
    size_t alen = m->alen, acap = m->acap, nev = m->nev, evcap = m->evcap;
    m->arena = s->arena, m->alen = s->alen, m->acap = s->acap;
    m->ev = s->ev, m->nev = s->nev, m->evcap = s->evcap;
    s->arena = a, s->alen = alen, s->acap = acap;
    s->ev = ev, s->nev = nev, s->evcap = evcap;
}

static struct mf_slot *pipe_filling(struct mf_pipe *pp)
{
    return &pp->slots[pp->head % MF_SLOTS];
}

static void emit_slot(struct mf *m, const struct mf_slot *s)
{
    size_t from = 0;
    for (size_t i = 0; i < s->npkgs; i++) {
        if (m->npkgs > 0 && m->npkgs % MF_BATCH == 0)
            mf_next_batch(m); /* only before a package: the last repodata is never empty */
        m->ev = s->ev ? s->ev + from : NULL; /* no event in the slot yet: no array */
        m->nev = s->ends[i] - from;
        mf_emit_package(m);
        m->npkgs++;
        from = s->ends[i];
    }
}

/* The filling slot is complete: to the emission (or emitted here, without
 * the thread). */
static void pipe_publish(struct mf_pipe *pp)
{
    struct mf_slot *s = pipe_filling(pp);
    slot_swap(pp->scan, s);
    if (!pp->threaded) {
        emit_slot(pp->emit, s);
    } else {
        pthread_mutex_lock(&pp->lock);
        pp->head++;
        pthread_cond_broadcast(&pp->cond);
        pthread_mutex_unlock(&pp->lock);
    }
}

/* Start filling the next slot once the emission has freed it. */
static void pipe_take(struct mf_pipe *pp)
{
    struct mf_slot *s;
    pthread_mutex_lock(&pp->lock);
    while (pp->threaded && pp->head - pp->tail >= MF_SLOTS)
        pthread_cond_wait(&pp->cond, &pp->lock);
    pthread_mutex_unlock(&pp->lock);
    s = pipe_filling(pp);
    slot_swap(pp->scan, s);
    pp->scan->alen = pp->scan->nev = 0;
    s->npkgs = 0;
}

/* Room in the arena for a package of raw bytes (its strings must not move
 * while it is decoded): a slot it does not fit goes first. */
static void pipe_reserve(struct mf_pipe *pp, size_t raw)
{
    struct mf *m = pp->scan;
    size_t need = 3 * raw + 64; /* decoded strings, checksums, dependency keys: each <= raw */
    if (m->acap - m->alen >= need)
        return;
    if (pipe_filling(pp)->npkgs > 0) {
        pipe_publish(pp);
        pipe_take(pp);
    }
    if (m->acap < need) { /* an empty slot: nothing points into it */
        m->acap = need > MF_SLOT_ARENA ? need : MF_SLOT_ARENA;
        m->arena = xrealloc(m->arena, m->acap);
    }
}

/* One package into the filling slot; false: not the usual shape. */
static bool pipe_scan(struct mf_pipe *pp, size_t pend)
{
    struct mf *m = pp->scan;
    struct mf_slot *s;

    pipe_reserve(pp, pend - m->pos);
    if (!mf_scan_package(m, pend))
        return false;
    s = pipe_filling(pp);
    s->ends[s->npkgs++] = m->nev;
    if (s->npkgs == MF_SLOT_PKGS) {
        pipe_publish(pp);
        pipe_take(pp);
    }
    return true;
}

/* Packages while they have the usual shape; true: the whole document was read. */
static bool scan_packages(struct mf_pipe *pp)
{
    struct mf *m = pp->scan;
    for (;;) {
        const char *p;
        size_t pend;
        while (!mf_need(m, 10) || (p = skip_blanks(m->buf + m->pos, m->buf + m->len)) ==
                                      m->buf + m->len) {
            if (m->eof)
                return false;
            mf_advance(m, m->len);
        }
        mf_advance(m, (size_t)(p - m->buf));
        if (m->len - m->pos >= 2 && p[1] == '/')
            return mf_epilogue(m);
        if (!(pend = mf_package_end(m)) || !pipe_scan(pp, pend))
            return false;
        mf_advance(m, pend);
    }
}

static void *scan_main(void *arg)
{
    struct mf_pipe *pp = arg;
    bool whole;

    pipe_take(pp);
    whole = scan_packages(pp);
    if (pipe_filling(pp)->npkgs > 0)
        pipe_publish(pp); /* the packages before a failed one too */
    pthread_mutex_lock(&pp->lock);
    pp->whole = whole;
    pp->done = true;
    pthread_cond_broadcast(&pp->cond);
    pthread_mutex_unlock(&pp->lock);
    return NULL;
}

/* The caller's side: emit the slots as they come, until the scan is done. */
static void pipe_emit_all(struct mf_pipe *pp)
{
    for (;;) {
        pthread_mutex_lock(&pp->lock);
        while (pp->tail == pp->head && !pp->done)
            pthread_cond_wait(&pp->cond, &pp->lock);
        bool over = pp->tail == pp->head;
        pthread_mutex_unlock(&pp->lock);
        if (over)
            return;
        emit_slot(pp->emit, &pp->slots[pp->tail % MF_SLOTS]);
        pthread_mutex_lock(&pp->lock);
        pp->tail++;
        pthread_cond_broadcast(&pp->cond);
        pthread_mutex_unlock(&pp->lock);
    }
}

static bool mf_pipe_enabled(void)
{
    const char *v = getenv("LAPIS_MD_PIPE");
    return !v || strcmp(v, "0") != 0;
}

/* scan's packages into emit's pool; true: the whole document was read. */
static bool mf_packages(struct mf *scan, struct mf *emit)
{
    struct mf_pipe pp = { .scan = scan, .emit = emit };
    pthread_t t;

    pthread_mutex_init(&pp.lock, NULL);
    pthread_cond_init(&pp.cond, NULL);
    pp.threaded = mf_pipe_enabled(); /* before the thread reads it */
    if (pp.threaded && lapis_md_start_thread(&t, scan_main, &pp) != 0)
        pp.threaded = false;
    if (pp.threaded) {
        pipe_emit_all(&pp);
        pthread_join(t, NULL);
    } else {
        scan_main(&pp);
    }
    pthread_mutex_destroy(&pp.lock);
    pthread_cond_destroy(&pp.cond);
    for (size_t i = 0; i < MF_SLOTS; i++) {
        free(pp.slots[i].arena);
        free(pp.slots[i].ev);
    }
    return pp.whole;
}

/* ---- the rest to libsolv ------------------------------------------------ */

/* What libsolv reads: the prologue; a newline (when lines were parsed) and
 * as many blanks as the column the rest starts at, so that libsolv's
 * columns are the document's and its lines are off by a count we know;
 * what is buffered; the stream. */
struct mf_rest {
    const char *a, *b;
    size_t alen, blen;
    bool newline;
    size_t blanks;
    FILE *in;
};

static ssize_t rest_read(void *cookie, char *out, size_t n)
{
    struct mf_rest *r = cookie;
    size_t k;
    if (r->alen) {
        k = n < r->alen ? n : r->alen;
        memcpy(out, r->a, k);
        r->a += k, r->alen -= k;
        return (ssize_t)k;
    }
    if (r->newline) {
        r->newline = false;
        *out = '\n';
        return 1;
    }
    if (r->blanks) {
        k = n < r->blanks ? n : r->blanks;
        memset(out, ' ', k);
        r->blanks -= k;
        return (ssize_t)k;
    }
    if (r->blen) {
        k = n < r->blen ? n : r->blen;
        memcpy(out, r->b, k);
        r->b += k, r->blen -= k;
        return (ssize_t)k;
    }
    k = fread(out, 1, n, r->in);
    return ferror(r->in) ? -1 : (ssize_t)k;
}

static int mf_fallback(struct mf *m, int flags)
{
    struct mf_rest rest = { .in = m->in };
    cookie_io_functions_t io = { .read = rest_read };
    FILE *fp;
    int r;

    if (m->prologue) { /* from the package where the usual shape ended */
        rest.a = m->prologue, rest.alen = m->plen;
        rest.newline = m->lines > 0, rest.blanks = m->col;
        rest.b = m->buf + m->pos, rest.blen = m->len - m->pos;
    } else {           /* from the start */
        rest.b = m->buf ? m->buf : "", rest.blen = m->len;
    }
    if (!(fp = fopencookie(&rest, "r", io)))
        return pool_error(m->pool, -1, "%s", strerror(errno));
    r = repo_add_rpmmd(m->repo, fp, NULL, flags);
    fclose(fp);
    if (r != 0 && m->lines > 1)
        r = lapis_md_error_shift(m->pool, m->lines - 1);
    return r;
}

static bool mf_enabled(void)
{
    const char *v = getenv("LAPIS_MD_FAST");
    return !v || strcmp(v, "0") != 0;
}

int lapis_mdfast_rpmmd(Repo *repo, FILE *xml)
{
    struct mf m = { .pool = repo->pool, .repo = repo, .in = xml };
    struct mf e = { .pool = repo->pool, .repo = repo }; /* the emission's state */
    int r = 0;

    if (!mf_enabled())
        return repo_add_rpmmd(repo, xml, NULL, 0);
    if (!mf_prologue(&m)) {
        r = mf_fallback(&m, 0);
        goto out;
    }
    e.data = repo_add_repodata(repo, 0);
    if (!mf_packages(&m, &e)) {
        r = mf_fallback(&m, REPO_REUSE_REPODATA); /* it internalizes */
        goto out;
    }
    repodata_free_dircache(e.data);
    if (e.data->end > e.data->start) {
        repodata_set_filelisttype(e.data, REPODATA_FILELIST_FILTERED);
        repodata_set_void(e.data, SOLVID_META, REPOSITORY_FILTEREDFILELIST);
    }
    repodata_internalize(e.data);
out:
    free(m.buf);
    free(m.prologue);
    free(m.arena);
    free(m.ev);
    free(e.lastdirstr);
    free(e.deps);
    free(e.evr);
    free(e.dir);
    return r;
}

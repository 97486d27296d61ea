/*
 * The agent's state (docs/sysupdate.md "State"): one line-oriented file in
 * the state directory, replaced atomically (temp file, fsync, rename), so a
 * kill at any moment leaves either the old or the new state, never a mix.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/alloc.h"
#include "basic/fs.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "lapis/common.h"
#include "sysupdate/sysupdate.h"

const char *const su_status_names[] = { "empty", "writing", "staged", "good", "bad", NULL };

static int status_of(const char *s)
{
    for (int i = 0; su_status_names[i]; i++)
        if (strcmp(s, su_status_names[i]) == 0)
            return i;
    return -1;
}

void su_slot_set(struct su_slot *s, const char *version, enum su_slot_status st, const char *hash)
{
    char *v = version ? xstrdup(version) : NULL;
    free(s->version);
    s->version = v;
    s->status = st;
    snprintf(s->roothash, sizeof(s->roothash), "%s", hash ? hash : "");
}

static int state_line(struct su_state *s, const char *line)
{
    char a[4], b[80], c[24], h[SU_HEX];
    long long n;
    size_t chunk;
    int p;
    if (sscanf(line, "booted %1[ab]", a) == 1)
        s->booted = a[0] - 'a';
    else if (sscanf(line, "slot %1[ab] %64s %16s %64s", a, b, c, h) == 4 && status_of(c) >= 0)
        su_slot_set(&s->slot[a[0] - 'a'], strcmp(b, "-") ? b : NULL, status_of(c), strcmp(h, "-") ? h : "");
    else if (sscanf(line, "index-issued %lld", &n) == 1)
        s->index_issued = n;
    else if (sscanf(line, "rolled-back %64s", b) == 1 && !s->rolled_back)
        s->rolled_back = xstrdup(b);
    else if (sscanf(line, "failed %64s", b) == 1)
        strv_push(&s->failed, xstrdup(b));
    else if (sscanf(line, "progress %1[ab] %64[0-9a-f] %d %zu", a, h, &p, &chunk) == 4 &&
             p >= 0 && p < SU_NPAYLOADS) {
        s->prog_slot = a[0] - 'a';
        strcpy(s->prog_manifest, h);
        s->prog_payload = p;
        s->prog_chunk = chunk;
    } else
        return -1;
    return 0;
}

int su_state_load(struct lapis_diag *d, const char *dir, struct su_state *ret)
{
    _cleanup_free_ char *path = path_join(dir, "state"), *text = NULL;
    size_t len;
    struct su_state s = { .prog_slot = -1 };
    int r = read_file(path, 1 << 20, &text, &len);
    if (r == -ENOENT)
        return lapis_err(d, LAPIS_E_CONFIG, "no state in %s: on a host, 'lapis-sysupdate boot' "
                         "(lapis-sysupdate-boot.service) records it; for a disk image, run "
                         "'lapis-sysupdate init --version V'", dir);
    if (r < 0)
        return lapis_err(d, r, "cannot read %s: %s", path, strerror(-r));
    size_t lineno = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (state_line(&s, l) < 0) {
            su_state_clear(&s);
            return lapis_err(d, LAPIS_E_CONFIG, "%s line %zu is malformed", path, lineno);
        }
    }
    *ret = s;
    return 0;
}

static void slot_line(FILE *f, char name, const struct su_slot *s)
{
    fprintf(f, "slot %c %s %s %s\n", name, s->version ? s->version : "-", su_status_names[s->status],
            s->roothash[0] ? s->roothash : "-");
}

int su_state_save(struct lapis_diag *d, const char *dir, const struct su_state *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "booted %c\n", 'a' + s->booted);
    slot_line(f, 'a', &s->slot[0]);
    slot_line(f, 'b', &s->slot[1]);
    fprintf(f, "index-issued %lld\n", s->index_issued);
    for (size_t i = 0; s->failed && s->failed[i]; i++)
        fprintf(f, "failed %s\n", s->failed[i]);
    if (s->rolled_back)
        fprintf(f, "rolled-back %s\n", s->rolled_back);
    if (s->prog_slot >= 0)
        fprintf(f, "progress %c %s %d %zu\n", 'a' + s->prog_slot, s->prog_manifest, s->prog_payload,
                s->prog_chunk);
    fclose(f);
    _cleanup_free_ char *path = path_join(dir, "state");
    int r = mkdir_p(dir, 0755);
    if (r >= 0)
        r = write_file_atomic(path, text, len);
    free(text);
    if (r < 0)
        return lapis_err(d, r, "cannot write %s: %s", path, strerror(-r));
    return 0;
}

void su_state_clear(struct su_state *s)
{
    for (int i = 0; i < 2; i++)
        free(s->slot[i].version);
    lapis_strv_free(s->failed);
    free(s->rolled_back);
    *s = (struct su_state){ .prog_slot = -1 };
}

bool su_state_failed(const struct su_state *s, const char *version)
{
    return strv_contains(s->failed, version);
}

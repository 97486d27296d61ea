/*
 * libarchive, loaded on first use (archive_dl.c): only OCI outputs write tar
 * files, and linking it mapped nine libraries (libxml2, ICU, libstdc++, ...)
 * into every lapis process. Call lapis_archive_load() before any sym_archive_*.
 */
#ifndef LAPIS_IMAGE_ARCHIVE_DL_H
#define LAPIS_IMAGE_ARCHIVE_DL_H

#include <archive.h>
#include <archive_entry.h>

#include "shared/diag.h"

#define LAPIS_ARCHIVE_SYMS(X)                                                            \
    X(archive_error_string) X(archive_write_new) X(archive_write_free)                   \
    X(archive_write_set_format_pax_restricted) X(archive_write_set_bytes_in_last_block)  \
    X(archive_write_open) X(archive_write_open_filename) X(archive_write_header)         \
    X(archive_write_data) X(archive_write_close) X(archive_entry_new)                    \
    X(archive_entry_free) X(archive_entry_clear) X(archive_entry_copy_pathname)          \
    X(archive_entry_copy_hardlink) X(archive_entry_copy_symlink)                         \
    X(archive_entry_set_filetype) X(archive_entry_set_perm) X(archive_entry_set_mode)    \
    X(archive_entry_set_mtime) X(archive_entry_set_size) X(archive_entry_set_uid)        \
    X(archive_entry_set_gid) X(archive_entry_set_rdev) X(archive_entry_xattr_add_entry)

#define LAPIS_ARCHIVE_DECLARE(name) extern __typeof__(name) *sym_##name;
LAPIS_ARCHIVE_SYMS(LAPIS_ARCHIVE_DECLARE)
#undef LAPIS_ARCHIVE_DECLARE

/* Loads libarchive once per process; 0, or an error with its message on d. */
int lapis_archive_load(struct lapis_diag *d);

#endif

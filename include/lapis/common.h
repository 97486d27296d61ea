/*
 * The part of the public API every Lapis library shares: error codes, log
 * levels and progress callbacks. libc only, so that code without the package
 * manager (src/shared, the on-host updater) speaks the same language.
 */
#ifndef LAPIS_COMMON_H
#define LAPIS_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

/* Lapis-specific error codes, above the errno range so they never collide. */
enum lapis_error {
    LAPIS_E_BASE = 1024,
    LAPIS_E_CONFIG,      /* bad configuration file or option */
    LAPIS_E_USAGE,       /* bad command-line usage */
    LAPIS_E_REPO,        /* repository unusable (unreachable, bad layout) */
    LAPIS_E_DOWNLOAD,    /* transfer failed on every mirror */
    LAPIS_E_CHECKSUM,    /* size or digest does not match the metadata */
    LAPIS_E_SIGNATURE,   /* OpenPGP signature missing, bad or by an unknown key */
    LAPIS_E_METADATA,    /* metadata unreadable or malformed */
    LAPIS_E_CACHE,       /* --cacheonly and nothing usable cached */
    LAPIS_E_NOTFOUND,    /* no package matches */
    LAPIS_E_SOLVE,       /* dependency problems */
    LAPIS_E_UNSAFE,      /* metadata points outside the repository */
    LAPIS_E_LOCKED,      /* another lapis holds the installroot's lock */
    LAPIS_E_RPM,         /* the rpm transaction failed (conflicts, space, scriptlets) */
    LAPIS_E_ABORTED,     /* the user (or the confirm callback) said no */
    LAPIS_E_HISTORY,     /* history database unusable or no such transaction */
    LAPIS_E_INTERRUPTED, /* stopped by the interrupt flag (SIGINT/SIGTERM); nothing half-done */
    LAPIS_E_OFFLINE,     /* no stored offline transaction, or it no longer applies */
};

/* Log levels for the message callback (warnings, progress notes). */
enum lapis_log_level { LAPIS_LOG_ERROR, LAPIS_LOG_WARNING, LAPIS_LOG_INFO, LAPIS_LOG_DEBUG };
typedef void (*lapis_log_fn)(enum lapis_log_level level, const char *msg, void *userdata);

/* Progress of long steps: downloads (bytes), verification and the rpm
 * transaction (packages). name is the item being worked on (may be NULL).
 * METADATA: one repo's metadata download, name its id, done its bytes so far,
 * total 0 while unknown (repomd.xml gives the sizes of the rest); reported
 * only for repos being fetched. METADATA_DONE: every repo's metadata loaded. */
enum lapis_progress_kind {
    LAPIS_PROGRESS_DOWNLOAD, LAPIS_PROGRESS_VERIFY, LAPIS_PROGRESS_INSTALL,
    LAPIS_PROGRESS_REMOVE, LAPIS_PROGRESS_SCRIPT_ERROR, LAPIS_PROGRESS_DONE,
    LAPIS_PROGRESS_METADATA, LAPIS_PROGRESS_METADATA_DONE,
};
typedef void (*lapis_progress_fn)(enum lapis_progress_kind kind, const char *name,
                                  unsigned long long done, unsigned long long total,
                                  void *userdata);

#ifdef __cplusplus
}
#endif

#endif

/*
 * Cleanup helpers (__attribute__((cleanup)), so every early return is safe),
 * ownership transfer and the export marker. libc only, like all of src/basic.
 */
#ifndef LAPIS_BASIC_MACRO_H
#define LAPIS_BASIC_MACRO_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The library is built with -fvisibility=hidden: only what is marked here (and
 * what include/lapis/ declares) is exported from liblapis.so. */
#define LAPIS_PUBLIC __attribute__((visibility("default")))

static inline void freep(void *p) { free(*(void **)p); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_close_ _cleanup_(closep)

/* Hand ownership out of a cleanup variable. */
#define TAKE_PTR(p) ({ __typeof__(p) _tp = (p); (p) = NULL; _tp; })

#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif

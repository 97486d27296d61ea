/* Repository URLs and hrefs (url.c). */
#ifndef LAPIS_BASIC_URL_H
#define LAPIS_BASIC_URL_H

#include <stdbool.h>

/* Join base URL and a relative href with exactly one '/'. */
char *lapis_url_join(const char *base, const char *href);
/* An href is safe if it is a relative path that cannot leave its base. */
bool lapis_href_is_safe(const char *href);
/* file:// URL -> local path (percent-decoded); NULL if not a file URL. */
char *lapis_url_to_path(const char *url);
/* http:// or https:// (answers carry an HTTP status). */
bool lapis_url_is_remote(const char *url);
/* Scheme allowed for repositories and keys: http, https, ftp, ftps, file. */
bool lapis_url_scheme_ok(const char *url);

#endif

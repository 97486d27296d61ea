/*
 * The SBOM's building blocks (sbom.c), exposed for the unit test: SPDX ids,
 * package URLs and the license decision. docs/image.md describes the output.
 */
#ifndef LAPIS_IMAGE_SBOM_H
#define LAPIS_IMAGE_SBOM_H

#include <stdbool.h>

#include "image/image.h"

/* "SPDXRef-Package-rpm-" + the NEVRA with every byte outside [A-Za-z0-9.-]
 * written as "-XX" (hex): name-[E:]V-R.A. Never NULL. */
char *lapis_image_sbom_spdxid(const struct lapis_image_pkg *p);

/* pkg:rpm/[VENDOR/]NAME@V-R?arch=A[&distro=D][&epoch=E], percent-encoded per
 * the purl spec (namespace lowercased). distro may be NULL. Never NULL. */
char *lapis_image_sbom_purl(const struct lapis_image_pkg *p, const char *distro);

/* True when s is an SPDX license expression made of license ids we know
 * (or LicenseRef-/DocumentRef- references) and the AND/OR/WITH operators. */
bool lapis_image_sbom_license_is_spdx(const char *s);

/* The LicenseRef id an RPM license text that is not SPDX is recorded under:
 * "LicenseRef-rpm-" + 16 hex digits of its sha256. Never NULL. */
char *lapis_image_sbom_license_ref(const char *text);

/* The whole document, as written to BASENAME.spdx.json (ends with '\n'). */
int lapis_image_sbom_render(struct lapis_image_build *b, char **ret);

/* "YYYY-MM-DDThh:mm:ssZ" for epoch, into buf (at least 21 bytes). */
void lapis_image_format_utc(long long epoch, char *buf, size_t len);

#endif

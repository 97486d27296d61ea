/* The OCI output's internals (oci.c, oci_layer.c): the layer writer and the
 * blob store shared by the per-arch layout and the multi-arch index. */
#ifndef LAPIS_IMAGE_OCI_H
#define LAPIS_IMAGE_OCI_H

#include <stdbool.h>

#include "shared/diag.h"

/* A blob as a descriptor needs it. */
struct oci_blob {
    char digest[72];               /* "sha256:HEX" */
    unsigned long long size;
};

struct oci_layer_result {
    struct oci_blob blob;          /* the compressed layer */
    char diff_id[72];              /* sha256 of the uncompressed tar */
    unsigned long long tar_bytes;  /* uncompressed layer size */
    unsigned long long file_bytes; /* regular-file bytes put in the layer */
};

/* Write one layer of the tree at rootdir into blobsdir (blobs/sha256), as a
 * deterministic tar compressed with "gzip" or "zstd"; mtimes clamped to epoch. */
int oci_layer_write(struct lapis_diag *d, const char *rootdir, int blobsfd, const char *compression,
                    long long epoch, struct oci_layer_result *ret);

/* Store buf as a blob in blobsfd (named by its sha256). */
int oci_blob_put(struct lapis_diag *d, int blobsfd, const char *buf, size_t len, struct oci_blob *ret);

#endif

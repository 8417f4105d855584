/* safetensors.h — reader and atomic writer of the safetensors format (8-byte little-endian header
 * length, JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, raw data).
 * Every read is validated: a truncated or corrupted file is an error naming the file and the fault. */
#ifndef EIDETIC_SAFETENSORS_H
#define EIDETIC_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "core/common.h"

typedef struct {
    char path[512];
    uint8_t *bytes; /* the whole file */
    size_t size;
    void *header;   /* cJSON* */
    const uint8_t *data;
    size_t data_size;
    int ntensors;   /* header entries other than __metadata__ */
} StFile;

typedef struct {
    const char *dtype; /* "F32", "F64", "I32", ... */
    int ndim;
    int64_t shape[8];
    const uint8_t *data;
    size_t nbytes;
} StTensor;

int st_open(StFile *f, const char *path);      /* 0 or -1 + eid_error */
/* the same checks on bytes in memory (copied; `name` is used in messages): the fuzz harness's entry */
int st_open_bytes(StFile *f, const char *name, const uint8_t *bytes, size_t n);
int st_parse(StFile *f);                       /* validates f->bytes[f->size]; closes f on error */
int st_tensor_count(const StFile *f);
const char *st_tensor_name(const StFile *f, int i); /* i-th tensor in header order */
void st_close(StFile *f);
int st_find(const StFile *f, const char *name, StTensor *t); /* 0 found, -1 missing (no error set) */
const char *st_meta(const StFile *f, const char *key);     /* NULL if absent */
/* Copy a float tensor (F32 or F64) into dst[n] as `real`, checking the shape. -1 + eid_error. */
int st_read_real(const StFile *f, const char *name, int ndim, const int *shape, real *dst);

/* Writer: collect tensors, then write atomically (temp file, fsync, rename, fsync dir). */
typedef struct {
    int n, cap;
    struct StOut { char name[128]; const char *dtype; int ndim; int64_t shape[8]; const void *data; size_t nbytes; } *t;
    int nmeta;
    char meta_key[32][64];
    char *meta_val[32];
} StWriter;
void st_writer_init(StWriter *w);
void st_add(StWriter *w, const char *name, const char *dtype, int ndim, const int64_t *shape, const void *data, size_t nbytes);
void st_add_real(StWriter *w, const char *name, int ndim, const int *shape, const real *data);
void st_meta_set(StWriter *w, const char *key, const char *val);
int st_write(StWriter *w, const char *path); /* frees the writer's lists either way */

#endif

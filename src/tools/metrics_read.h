/* metrics_read.h — the reader of a training run's metrics.jsonl (one JSON object per step, written by
 * `eidetic train`; docs/birdie.md "Birdie in eidetic" lists the fields of Birdie's controller) for
 * `eidetic plot`. Strict: every line must be one JSON object with an integral "step" that grows from
 * line to line; known fields must have their types; a controller line's class shares must lie in
 * [0, 1] and sum to 1 (within 1e-3), and every controller line must have as many classes as the
 * first. Errors name the file and the line. One exception: an unterminated last line that is not
 * JSON (the run is writing it, or was killed while writing it) is skipped and counted in torn_tail.
 * Fields a line does not carry read as NaN. */
#ifndef EIDETIC_METRICS_READ_H
#define EIDETIC_METRICS_READ_H
#include <stddef.h>

#define MR_MAX_CLASSES 32
#define MR_NAME_LEN 32

typedef struct {
    long step;
    double loss, train_acc, lr, test_acc, test_loss, val_loss, val_bpb; /* NaN when absent */
    int finetune;       /* "finetune":1 */
    int ctl;            /* index into Metrics.ctl of this line's controller decision, -1 = none */
} MetricsRow;

/* a controller decision (a line with "birdie_class_mix"); kept apart so that long runs stay small */
typedef struct {
    long step;
    int eval;           /* birdie_eval (-1 when absent) */
    char mode[16];      /* birdie_mode ("" when absent) */
    double mix[MR_MAX_CLASSES], reward[MR_MAX_CLASSES], total_reward, rm_loss; /* NaN when absent */
} MetricsCtl;

typedef struct {
    MetricsRow *rows;
    int n, cap;
    MetricsCtl *ctl;    /* the controller decisions in step order */
    int n_ctl, cap_ctl;
    int n_classes;      /* classes per controller line (0 without one) */
    int have_names;     /* "birdie_classes" was found (on any line) */
    char class_names[MR_MAX_CLASSES][MR_NAME_LEN];
    int torn_tail;      /* 1: an unterminated last line that is not JSON was skipped */
    int has[8];         /* per field of MR_F_*: some line carries it */
} Metrics;

enum { MR_F_LOSS, MR_F_TRAIN_ACC, MR_F_LR, MR_F_TEST_ACC, MR_F_TEST_LOSS, MR_F_VAL_LOSS, MR_F_VAL_BPB, MR_F_REWARD };

/* Parses text[0 .. n) (need not be NUL-terminated); name is the file named in messages. 0, or -1 +
 * eid_error "NAME:LINE: ..." (m is then empty). An empty text (no line) is an error. */
int metrics_parse(const char *text, size_t n, const char *name, Metrics *m);
/* Reads and parses the file at path (-1 + eid_error naming it when it cannot be read). */
int metrics_read(const char *path, Metrics *m);
void metrics_free(Metrics *m);

#endif

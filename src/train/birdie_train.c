/* birdie_train.c — Birdie's objectives and controller inside the training loop (birdie_train.h). */
#include "train/birdie_train.h"
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "core/runtime.h"

/* [OURS] documents from a synthetic task: about 2M training tokens and 64K validation tokens */
#define TASK_TRAIN_TOKENS (1u << 21)
#define TASK_VAL_TOKENS (1u << 16)

/* The controller needs a validation loss for every arm (docs/birdie.md §5.2): an arm whose
 * validation rows hold no answer token (validation documents too short for its spans, say) would
 * stop the run at its first controller step, so it is refused here, before anything is written. */
static int check_val_rows(const BirdieRun *b, const TrainCfg *c) {
    int T = b->src.L, ok = 1;
    int *tok = eid_xmalloc(sizeof(int) * T), *lab = eid_xmalloc(sizeof(int) * T), *work = eid_xmalloc(sizeof(int) * 3 * (size_t)T);
    uint8_t *fl = eid_xmalloc((size_t)T);
    for (int k = 0; k < b->src.n_arms && ok; k++) {
        long labels = 0;
        for (int i = 0; i < b->val_rows; i++) {
            birdie_val_row(&b->src, c->seed, k, i, tok, lab, fl, work);
            for (int t = 0; t < T; t++) labels += lab[t] >= 0;
        }
        if (!labels) {
            ok = 0;
            eid_error("--objective %s: objective arm %d (%s) has no answer token in its %d validation rows of %d "
                      "tokens: the validation documents are too short for it (use a larger corpus or validation "
                      "split, or a longer --seq-len)", c->objective, k, b->src.arms[k].name, b->val_rows, T);
        }
    }
    free(tok), free(lab), free(work), free(fl);
    return ok ? 0 : -1;
}

int birdie_run_open(BirdieRun *b, const TrainCfg *c, const Corpus *corpus, const char *resume_dir) {
    memset(b, 0, sizeof *b);
    int obj = birdie_objective_parse(c->objective);
    if (obj < 0) return -1;
    if (birdie_source_init(&b->src, obj, c->task.seq_len, c->vocab_size) != 0) return -1;
    if (corpus) {
        for (int k = 0; k < 2; k++) b->src.text[k] = (BirdieText){corpus->stream[k], corpus->n[k]};
        if (corpus->n[1] == 0) return eid_error("--data %s: the validation split is empty", c->data), -1;
    } else {
        birdie_text_from_task(&b->src, &c->task, c->seed, TASK_TRAIN_TOKENS, TASK_VAL_TOKENS);
    }
    b->val_rows = c->birdie_val_rows > 0 ? c->birdie_val_rows : 2;
    if (obj == BOBJ_BIRDIE || obj == BOBJ_BIRDIE_CAUSAL) {
        BctlCfg cfg = bctl_default_cfg();
        if (c->birdie_candidates > 0) cfg.candidates = c->birdie_candidates;
        int cls[BIRDIE_MAX_ARMS];
        for (int k = 0; k < b->src.n_arms; k++) cls[k] = b->src.arms[k].cls;
        if (bctl_init(&b->ctl, &cfg, b->src.n_arms, cls, b->src.init_action, c->steps, c->seed) != 0)
            return birdie_run_close(b), -1;
        b->has_ctl = 1;
        if (check_val_rows(b, c) != 0) return birdie_run_close(b), -1;
        if (resume_dir) {
            char path[1100];
            snprintf(path, sizeof path, "%s/%s", resume_dir, BIRDIE_CTL_FILE);
            if (bctl_load(&b->ctl, path) != 0) return birdie_run_close(b), -1;
            memcpy(b->src.action, b->ctl.action, sizeof(double) * b->src.n_arms);
        }
    }
    return 0;
}

void birdie_run_close(BirdieRun *b) {
    if (b->has_ctl) bctl_free(&b->ctl);
    b->has_ctl = 0;
    birdie_source_free(&b->src);
}

int birdie_val_losses(BirdieRun *b, Model *m, uint64_t seed, int batch, double *L) {
    int T = b->src.L, R = b->val_rows, nb = batch < R ? batch : R;
    int *tok = eid_xmalloc(sizeof(int) * nb * T), *lab = eid_xmalloc(sizeof(int) * nb * T);
    int *work = eid_xmalloc(sizeof(int) * 3 * (size_t)T);
    uint8_t *fl = eid_xmalloc((size_t)nb * T);
    int rc = model_plan(m, nb, T, nb * T);
    for (int k = 0; k < b->src.n_arms && rc == 0; k++) {
        double nats = 0;
        long labels = 0;
        for (int first = 0; first < R && rc == 0; first += nb) {
            int n = R - first < nb ? R - first : nb;
            for (int i = 0; i < nb; i++) /* a short last batch: unlabelled copies keep the plan */
                birdie_val_row(&b->src, seed, k, first + (i < n ? i : 0), tok + (size_t)i * T, lab + (size_t)i * T,
                               fl + (size_t)i * T, work);
            for (int i = n; i < nb; i++)
                for (int t = 0; t < T; t++) lab[(size_t)i * T + t] = -100;
            model_trunk_forward(m, tok, fl, nb, T);
            Batch bt = {tok, lab, fl, nb, T, 0};
            LossOut lo;
            if ((rc = model_loss(m, &bt, &lo)) != 0) break;
            nats += lo.loss * lo.n_labels, labels += lo.n_labels;
        }
        L[k] = labels ? nats / (double)labels : 0;
    }
    free(tok), free(lab), free(work), free(fl);
    return rc;
}

int birdie_run_after_step(BirdieRun *b, Model *m, const TrainCfg *c, long step, int batch, char *json, size_t n) {
    if (!b->has_ctl || !bctl_is_eval(&b->ctl, step)) return 0;
    double t0 = eid_now(), L[BIRDIE_MAX_ARMS];
    if (birdie_val_losses(b, m, c->seed, batch, L) != 0) return -1;
    if (bctl_update(&b->ctl, step, L) != 0) return -1;
    memcpy(b->src.action, b->ctl.action, sizeof(double) * b->src.n_arms);
    b->val_sec += eid_now() - t0;
    if (!c->quiet) {
        static const char *modes[] = {"init", "uniform", "explore", "greedy"};
        double mix[BIRDIE_N_CLASSES] = {0};
        for (int k = 0; k < b->src.n_arms; k++) mix[b->src.arms[k].cls] += b->ctl.action[k];
        eid_log("birdie: step %ld evaluation %d (%s, %.1fs): class mix ntp %.3f plm %.3f copy %.3f deshuffle %.3f "
                "infill %.3f ae %.3f selcopy %.3f", step, b->ctl.n_evals, modes[b->ctl.last_mode], eid_now() - t0, mix[0],
                mix[1], mix[2], mix[3], mix[4], mix[5], mix[6]);
    }
    size_t q = strlen(json);
    if (q + 2 >= n) return eid_error("birdie: metrics line buffer too small"), -1;
    json[q++] = ',';
    json[q] = 0;
    if (bctl_log_json(&b->ctl, json + q, n - q) != 0) return -1;
    /* the first decision's line names the classes of birdie_class_mix / _reward once, in their order
     * (docs/birdie.md "Birdie in eidetic"): `eidetic plot` labels its legend with them. The line is a
     * pure function of the run, so a resumed run writes it exactly as an uninterrupted one. */
    if (b->ctl.n_evals == 1) {
        q = strlen(json);
        q += (size_t)snprintf(json + q, n - q, ",\"birdie_classes\":[");
        for (int j = 0; j < b->ctl.n_classes && q < n; j++)
            q += (size_t)snprintf(json + q, n - q, "%s\"%s\"", j ? "," : "",
                                  j < BIRDIE_N_CLASSES ? birdie_class_names[j] : "?");
        if (q < n) q += (size_t)snprintf(json + q, n - q, "]");
        if (q >= n) return eid_error("birdie: metrics line buffer too small"), -1;
    }
    return 1;
}

int birdie_run_save(const BirdieRun *b, const char *dir) {
    if (!b->has_ctl) return 0;
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, BIRDIE_CTL_FILE);
    return bctl_save(&b->ctl, path);
}

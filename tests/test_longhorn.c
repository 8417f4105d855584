/* test_longhorn.c — Longhorn mixer and SwiGLU MLP: gradients, step equivalence, chunk invariance. */
#include "layer_harness.h"

int main(int argc, char **argv) {
    eid_runtime_setup(2, 0);
    LayerCfg c = {.mixer = "longhorn", .d_state = 4, .expand = 2, .d_conv = 4, .dt_rank = 2};
    layer_suite("longhorn", c, 8);
    LayerCfg c2 = {.mixer = "longhorn", .d_state = 3, .expand = 1, .d_conv = 2, .dt_rank = 1};
    layer_suite("longhorn", c2, 5);
    LayerCfg m = {.mixer = "longhorn", .d_ff = 12};
    layer_suite("swiglu", m, 8);
    return t_summary("test_longhorn");
}

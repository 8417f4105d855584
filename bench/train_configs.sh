# train_configs.sh — the `eidetic bench train` flags of the named configurations (docs/performance.md
# "Configurations"), shared by bench/precision.sh and bench/gemm_plan.sh; sourced, never run.
#   train_config_args NAME   prints the flags of NAME (A-d128, A-d256, B-d512); non-zero for another name
train_config_args() {
    case $1 in
        A-d128) echo "--d-model 128 --n-layer 2 --d-ff 0 --seq-len 256 --batch 16 --loss mqar" ;;
        A-d256) echo "--d-model 256 --n-layer 2 --d-ff 0 --seq-len 256 --batch 16 --loss mqar" ;;
        B-d512) echo "--d-model 512 --n-layer 4 --d-ff 1376 --seq-len 1024 --batch 4 --loss lm" ;;
        *) return 1 ;;
    esac
}

#!/bin/bash
# Issue 11: the equal-budget candidates compared on dev (session 5). Usage: scripts/candidates.sh reg|cls|gan
# (needs scripts/fetch-photos.sh and runs/prior.json from `rechroma prior --data data/train -o runs/prior.json`).
# Equal-budget candidates on the same recipe as runs/joint4 (AdamW 1e-3, wd 1e-2, cosine over 6000 with
# 100 warm-up steps, EMA 0.999, 8 crops of 128², min scale 0.25), validated on dev every 250 steps.
B=${B:-target/release/rechroma}
common="--prior runs/prior.json --data data/train --val data/dev --crop 128 --batch-size 8 --min-scale 0.25 --checkpoint-every 50 --validate-every 250 --gamut fit"
recipe="--lr 1e-3 --cosine-steps 6000 --warmup-steps 100 --weight-decay 1e-2 --ema 0.999"
run() { local out=$1; shift; if [ -d runs/$out/checkpoint ]; then $B train --out-dir runs/$out --resume; else $B train --out-dir runs/$out "$@"; fi; }
case $1 in
reg) run cand-reg --arch mleu-reg $common $recipe --steps 500 ;;
cls) run cand-cls4 --arch mleu-cls --class-stride 4 --prior-correction 1 $common $recipe --steps 500 ;;
gan) run cand-gan --arch chromagan --gan-width 256 --gan-fc 512,256 --gan-class-fc 1024,1024 $common --steps 250 ;;
esac

#!/usr/bin/env bash
# Takes docs/tensorboard.png: TensorBoard's Scalars dashboard on a sagetext run, served on
# loopback and photographed with headless Chromium (Debian: apt-get install -y chromium).
#
#   docs/tensorboard_screenshot.sh LOGDIR [OUT.png] [TAG_REGEX]
#
# The README's picture is a Seq2Seq run made with:
#   sagetext train --algorithm seq2seq --channel train=DIGITS/train/ --channel validation=DIGITS/val/ \
#       -p rnn_num_hidden=32 -p num_embed_source=16 -p num_embed_target=16 -p batch_size=32 \
#       -p learning_rate=0.003 -p max_num_batches=300 -p checkpoint_frequency_num_batches=30 \
#       -p bleu_sample_size=50 -p beam_size=2 --model-dir model/ --tensorboard runs/seq2seq-digits
# where DIGITS holds train.src/train.trg (3000 lines) and val.src/val.trg (100 lines) of 1-8
# random digits and their reversal (the task of tests/unit/test_seq2seq.py), then
#   docs/tensorboard_screenshot.sh runs docs/tensorboard.png 'validation|running_perplexity'
set -euo pipefail

logdir=${1:?usage: $0 LOGDIR [OUT.png] [TAG_REGEX]}
out=${2:-docs/tensorboard.png}
tags=${3:-}
port=${PORT:-6106}
python=${PYTHON:-python}

"$python" -m tensorboard.main --logdir "$logdir" --host 127.0.0.1 --port "$port" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 60); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 1
done

url="http://127.0.0.1:$port/#scalars&_smoothingWeight=0"
[ -n "$tags" ] && url="$url&tagFilter=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$tags")"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,760 \
    --virtual-time-budget=20000 --screenshot="$out" "$url" 2>/dev/null
ls -l "$out"

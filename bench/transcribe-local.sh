#!/usr/bin/env bash
# Local transcription figures for docs/benchmarks.md: real-time factor (seconds of audio per CPU second of
# pocketsphinx) and word error rate on flite sentences, the way audio.transcribe runs it (16 kHz mono WAV,
# pocketsphinx_continuous -time yes). Usage: bench/transcribe-local.sh
set -euo pipefail
dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT
sentences=(
  "The quick brown fox jumps over the lazy dog. Please call me tomorrow morning."
  "Open the door and turn on the light in the kitchen."
  "We will meet at the station at seven o'clock in the evening."
  "The weather today is cold and windy with some rain in the afternoon."
)
for voice in rms slt; do
  i=0
  for s in "${sentences[@]}"; do
    i=$((i+1))
    flite -voice "$voice" -t "$s" -o "$dir/raw.wav"
    ffmpeg -nostdin -loglevel error -y -i "$dir/raw.wav" -ac 1 -ar 16000 -c:a pcm_s16le "$dir/$voice-$i.wav"
    dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$dir/$voice-$i.wav")
    /usr/bin/time -f "%U %S" -o "$dir/cpu" pocketsphinx_continuous -infile "$dir/$voice-$i.wav" -time yes -logfn /dev/null > "$dir/out"
    hyp=$(head -1 "$dir/out")
    python3 - "$voice" "$dur" "$(cat "$dir/cpu")" "$s" "$hyp" <<'PY'
import re, sys
voice, dur, cpu, ref, hyp = sys.argv[1:]
u, s = map(float, cpu.split())
w = lambda t: re.findall(r"[a-z']+", t.lower())
a, b = w(ref), w(hyp)
d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
for i in range(1, len(a) + 1):
    for j in range(1, len(b) + 1):
        d[i][j] = min(d[i-1][j] + 1, d[i][j-1] + 1, d[i-1][j-1] + (a[i-1] != b[j-1]))
print(f"{voice}\taudio {float(dur):.2f} s\tcpu {u+s:.2f} s\tRTF {float(dur)/(u+s):.2f}x\tWER {d[-1][-1]/len(a):.2f}\t{hyp}")
PY
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Helpers for the benchmark scripts (sourced). measure CMD... runs it RUNS
# times (default 5) and sets T_MEDIAN (seconds) and T_RSS (peak bytes of the
# slowest-memory run), using GNU time when present and python otherwise.
RUNS=${RUNS:-5}
measure() {
    _ts=""; T_RSS=0
    _i=0
    while [ "$_i" -lt "$RUNS" ]; do
        _out=$(/usr/bin/python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
dt = time.perf_counter() - t
if r.returncode:
    sys.exit(f"command failed ({r.returncode}): {' '.join(sys.argv[1:])}")
print(f"{dt:.6f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}")
PY
)
        _ts="$_ts ${_out% *}"
        _r=${_out#* }
        [ "$_r" -gt "$T_RSS" ] && T_RSS=$_r
        _i=$((_i + 1))
    done
    T_MEDIAN=$(echo $_ts | tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
}
fmt_s() { awk -v x="$1" 'BEGIN {printf "%.3f", x}'; }
fmt_mb() { awk -v x="$1" 'BEGIN {printf "%.1f", x / 1e6}'; }
fmt_rate() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f", b / 1e6 / s}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

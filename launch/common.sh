# Sourced by the launch and cluster scripts: the Debian packages they install, the cohort
# binary they run, and the loop that restarts a failed job from its last checkpoint.

# The Debian packages the build needs: Open MPI, OpenBLAS, oneDNN, zlib, libjpeg-turbo and pkg-config.
build_packages=(libopenmpi-dev openmpi-bin libopenblas-dev libdnnl-dev zlib1g-dev libjpeg62-turbo-dev pkg-config)

# install_packages NAME PACKAGE...: installs with apt those of the packages that are not
# installed yet (apt-get update first; sudo when not root). Nothing happens when all are.
install_packages() {
  local name="$1" p missing=()
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "$name: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# cohort_binary ROOT NAME: the binary to run, built when missing.
# COHORT_BINARY names another build (the tests use the debug one); it must exist. Otherwise
# the release binary of this checkout, built for this machine's vector units
# (COHORT_TARGET_CPU, default: what launch/cpu-target prints; set it empty for a binary
# that runs on any x86-64 node of a cluster).
cohort_binary() {
  local root="$1" name="$2"
  if [ -n "${COHORT_BINARY:-}" ]; then
    [ -x "$COHORT_BINARY" ] || { echo "$name: COHORT_BINARY=$COHORT_BINARY is not an executable file" >&2; return 2; }
    echo "$COHORT_BINARY"
    return 0
  fi
  local binary="$root/.build/release/cohort"
  if [ ! -x "$binary" ]; then
    echo "$name: building the release binary" >&2
    (cd "$root" && COHORT_TARGET_CPU="${COHORT_TARGET_CPU-$(launch/cpu-target)}" swift build -c release --product cohort >&2) || return 1
  fi
  echo "$binary"
}

# run_directory TRAIN_ARGS...: the run directory to resume from: --resume's, else --out's.
run_directory() {
  local out="" prev="" a
  for a in "$@"; do
    case "$prev" in --out) [ -n "$out" ] || out="$a" ;; --resume) out="$a" ;; esac
    case "$a" in --out=*) [ -n "$out" ] || out="${a#--out=}" ;; --resume=*) out="${a#--resume=}" ;; esac
    prev="$a"
  done
  echo "$out"
}

# train_with_restarts NAME RESTARTS: runs "${launch[@]}" -- train "${train_args[@]}" (launch:
# the `cohort launch` command, which replaces itself with mpirun) and, when the job fails,
# starts it again with --resume from its last checkpoint, up to RESTARTS times. Bad settings
# (exit 64) and deliberate stops (exit 3) are not restarted. A function before_restart, if
# defined, runs before each restart and may change `launch` (or refuse, returning non-zero).
# SIGINT/SIGTERM go to the ranks themselves (mpirun would end the job with an error); they
# checkpoint at the next step and exit 0, and so does this loop. Returns the job's status.
train_with_restarts() {
  local name="$1" restarts="$2" out attempt=0 status
  out=$(run_directory "${train_args[@]}")
  job_pid=""
  stopping=0
  trap 'stopping=1; [ -n "$job_pid" ] && pkill -TERM -P "$job_pid" 2>/dev/null || true' INT TERM
  while true; do
    ((stopping == 0)) || return 0
    # In a session of its own, so that a Ctrl-C on the terminal reaches this script only
    # (mpirun would end the job at once, before the ranks have checkpointed).
    setsid "${launch[@]}" -- train "${train_args[@]}" &
    job_pid=$!
    # wait returns early (status > 128) when a trapped signal arrives: wait again until mpirun is gone.
    while true; do
      wait "$job_pid" && status=0 || status=$?
      kill -0 "$job_pid" 2>/dev/null || break
    done
    job_pid=""
    if ((status == 0 || stopping || status == 3 || status == 64 || attempt >= restarts)); then return "$status"; fi
    if [ -z "$out" ] || ! compgen -G "$out/checkpoints/step-*" >/dev/null; then
      echo "$name: the job failed (exit $status) before its first checkpoint; nothing to resume" >&2
      return "$status"
    fi
    attempt=$((attempt + 1))
    if declare -F before_restart >/dev/null; then before_restart "$attempt" || return "$status"; fi
    echo "$name: the job failed (exit $status); restart $attempt of $restarts from $out's last checkpoint" >&2
    case " ${train_args[*]} " in *" --resume "*|*" --resume="*) ;; *) train_args+=(--resume "$out") ;; esac
  done
}

# Sourced by the launch and cluster scripts: the cohort binary they run, built when missing.
#
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

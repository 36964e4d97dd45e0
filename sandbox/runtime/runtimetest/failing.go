package runtimetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The failure modes of FailingRuntime.
const (
	// ModeFail: the subcommand fails at once (exit 1) without reaching the runtime.
	ModeFail = "fail"
	// ModeHang: the subcommand never returns and never reaches the runtime.
	ModeHang = "hang"
	// ModeFailAfter: the subcommand runs for real, then reports failure; for create or
	// run that leaves a real container behind the failure.
	ModeFailAfter = "fail-after"
	// ModeHangAfter: the subcommand runs for real, then hangs: a runtime that did its
	// work and got stuck, which only the caller's context can end.
	ModeHangAfter = "hang-after"
	// ModeSlowAfter: the subcommand runs for real, then takes 2 s more (BERTH_SLOW_SECONDS
	// when set) before it exits with the runtime's status: a runtime on a slow machine,
	// whose work is done well before it returns.
	ModeSlowAfter = "slow-after"
)

// InjectedMessage is the error the wrapper reports, followed by the subcommand.
const InjectedMessage = "injected failure:"

// FailingRuntime writes a shell script in a test temporary directory that stands in for
// the OCI runtime at realPath: every call passes through to it, except the calls of
// subcommand (e.g. "create", "run", "start", "kill", "delete", "state", "update"),
// which fail, hang or dawdle as mode says (ModeFail, ModeHang, ModeFailAfter,
// ModeHangAfter, ModeSlowAfter).
// It returns the script's path, to use as a Runtime's Path or as a runtime's path in
// berthd's configuration: no code change is needed to inject the failure.
//
// A failure is reported as the runtime would: a JSON error entry in the --log file and
// a line on stderr, both saying InjectedMessage and the subcommand. A hang is `exec sleep`,
// so killing the process the caller started ends it. The environment variables
// BERTH_FAIL_ON and BERTH_FAIL_MODE, when set, override subcommand and mode at run time.
//
// The script finds the subcommand as the first argument that does not start with "-",
// so the global options before it must be spelled --option=value, as Runtime does.
func FailingRuntime(t testing.TB, realPath, subcommand, mode string) string {
	t.Helper()
	switch mode {
	case ModeFail, ModeHang, ModeFailAfter, ModeHangAfter, ModeSlowAfter:
	default:
		t.Fatalf("runtimetest: unknown failure mode %q", mode)
	}
	real, err := filepath.Abs(realPath)
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(failingScript, shellQuote(real), shellQuote(subcommand), shellQuote(mode), InjectedMessage)
	path := filepath.Join(t.TempDir(), "failing-"+filepath.Base(real))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// shellQuote quotes s for sh(1).
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

const failingScript = `#!/bin/sh
# OCI runtime wrapper made by runtimetest.FailingRuntime: injects a failure.
real=%s
fail_on=%s
mode=%s
fail_on="${BERTH_FAIL_ON:-$fail_on}"
mode="${BERTH_FAIL_MODE:-$mode}"
log=
sub=
for arg in "$@"; do
	case "$arg" in
	--log=*) log="${arg#--log=}" ;;
	-*) ;;
	*) sub="$arg"; break ;;
	esac
done
[ "$sub" = "$fail_on" ] || exec "$real" "$@"

fail() {
	msg="%s $sub"
	if [ -n "$log" ]; then
		printf '{"level":"error","msg":"%%s"}\n' "$msg" >>"$log"
	fi
	echo "$msg" >&2
	exit 1
}
case "$mode" in
fail) fail ;;
hang) exec sleep 3600 ;;
fail-after) "$real" "$@"; fail ;;
hang-after) "$real" "$@"; exec sleep 3600 ;;
slow-after)
	"$real" "$@"
	rc=$?
	sleep "${BERTH_SLOW_SECONDS:-2}"
	exit $rc
	;;
esac
echo "unknown failure mode $mode" >&2
exit 2
`

// Command berth-monitor is the per-container monitor berthd starts for each container:
// it runs the container through the OCI runtime, holds its stdio, writes its CRI log and
// records its exit. See package sandbox/monitor, which is all of it.
package main

import (
	"os"

	"github.com/berth-runtime/berth/sandbox/monitor"
)

func main() { os.Exit(monitor.Main(os.Args)) }

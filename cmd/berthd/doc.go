// Command berthd is berth's daemon: the CRI server kubelet and crictl talk to.
//
//	berthd [flags]              serve the CRI
//	berthd config default       print the embedded default configuration
//	berthd config effective     print the configuration berthd would run with
//
// It reads /etc/berth/berth.toml and /etc/berth/berth.d/*.toml when they exist; with
// neither it runs on its embedded defaults. Flags override the files; --default-network
// turns on the embedded pod network for a node that joins no cluster.
package main

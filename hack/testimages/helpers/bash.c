/*
 * bash: /bin/bash of the agnhost test image, whose upstream base has bash.
 * The specs that run it (a probe script with a SIGTERM trap, "bash -c echo")
 * need no more than a POSIX shell, so it runs busybox's sh with the same
 * arguments (busybox picks the applet by argv[0], hence "sh").
 */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
	(void)argc;
	argv[0] = "sh";
	execv("/bin/sh", argv);
	perror("bash: exec /bin/sh");
	return 127;
}

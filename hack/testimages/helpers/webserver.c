/*
 * webserver: stands in for nginx and httpd in the berth test images.
 *
 * Installed as /usr/sbin/nginx it behaves like nginx as critest sees it: it
 * renames itself "nginx: master process nginx -g daemon off;" (argv and
 * comm), writes its pid to /var/run/nginx.pid and serves
 * /usr/share/nginx/html on the port of the "listen" line of
 * /etc/nginx/conf.d/default.conf (default 80).
 *
 * Installed as httpd-foreground it logs a line mentioning httpd and serves
 * /usr/local/apache2/htdocs on port 80.
 *
 * The HTTP server is busybox httpd, run as a child. SIGTERM, SIGINT and
 * SIGQUIT stop the child and then this process (which is normally PID 1 of
 * its container, so it must handle them itself); other children are reaped.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define NGINX_TITLE "nginx: master process nginx -g daemon off;"
#define NGINX_CONF "/etc/nginx/conf.d/default.conf"
#define NGINX_PIDFILE "/var/run/nginx.pid"
#define BUSYBOX "/bin/busybox"

static volatile sig_atomic_t stop_signal;
static volatile pid_t child;

static void on_stop(int sig) {
	stop_signal = sig;
	if (child > 0)
		kill(child, SIGTERM);
}

/* listen_port returns the port of the first "listen N;" line of conf. */
static int listen_port(const char *conf, int def) {
	char line[512];
	FILE *f = fopen(conf, "r");
	int port = def;

	if (f == NULL)
		return def;
	while (fgets(line, sizeof line, f) != NULL) {
		char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (strncmp(p, "listen", 6) == 0 && isspace((unsigned char)p[6])) {
			int n = atoi(p + 7);
			if (n > 0 && n < 65536) {
				port = n;
				break;
			}
		}
	}
	fclose(f);
	return port;
}

static void write_pidfile(const char *path) {
	FILE *f;

	mkdir("/var/run", 0755);
	f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "webserver: cannot write %s: %s\n", path, strerror(errno));
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

static pid_t start_httpd(int port, const char *root) {
	char portstr[16];
	pid_t pid;

	snprintf(portstr, sizeof portstr, "%d", port);
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl(BUSYBOX, "httpd", "-f", "-v", "-p", portstr, "-h", root, (char *)NULL);
		fprintf(stderr, "webserver: exec %s: %s\n", BUSYBOX, strerror(errno));
		_exit(127);
	}
	return pid;
}

int main(int argc, char **argv) {
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int nginx = strncmp(name, "nginx", 5) == 0;
	const char *root = nginx ? "/usr/share/nginx/html" : "/usr/local/apache2/htdocs";
	struct sigaction sa;
	int port, status = 0;

	(void)argc;
	if (nginx && strcmp(argv[0], NGINX_TITLE) != 0) {
		/* Re-exec with nginx's process title as the whole command line. */
		char *nargv[] = {NGINX_TITLE, NULL};
		execv("/proc/self/exe", nargv);
		fprintf(stderr, "webserver: re-exec: %s\n", strerror(errno));
	}
	if (nginx) {
		prctl(PR_SET_NAME, "nginx", 0, 0, 0);
		port = listen_port(NGINX_CONF, 80);
		write_pidfile(NGINX_PIDFILE);
	} else {
		port = 80;
		fprintf(stderr, "httpd: serving %s on port %d (busybox httpd)\n", root, port);
	}

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);

	child = start_httpd(port, root);
	if (child < 0) {
		perror("webserver: fork");
		return 1;
	}
	if (stop_signal)
		kill(child, SIGTERM);
	for (;;) {
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0 || pid == child)
			break;
	}
	if (nginx)
		unlink(NGINX_PIDFILE);
	if (stop_signal)
		return 0;
	fprintf(stderr, "webserver: httpd exited (status %d)\n", status);
	return 1;
}

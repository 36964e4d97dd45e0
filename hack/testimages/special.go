package testimages

import (
	"archive/tar"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func busyboxImage(b *Builder, f Format) (v1.Image, error) {
	return b.BusyboxImage(f, BusyboxConfig())
}

// predefinedGroupImage is critest's image-predefined-group: busybox after
//
//	adduser -u 1000 -D default-user
//	addgroup -g 50000 group-defined-in-image
//	addgroup default-user group-defined-in-image
//
// with USER 1000. default-user's primary group is default-user (1000); it is
// also a member of group-defined-in-image (50000).
func predefinedGroupImage(b *Builder, f Format) (v1.Image, error) {
	passwd := Passwd + "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"
	group := Group + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"
	cfg := BusyboxConfig()
	cfg.User = "1000"
	return b.BusyboxImage(f, cfg, []File{
		{Path: "home/default-user", Type: tar.TypeDir, Mode: 0o755, UID: 1000, GID: 1000},
		Reg("etc/passwd", 0o644, passwd),
		Reg("etc/group", 0o644, group),
		Reg("etc/shadow", 0o640, shadowFor(passwd)),
	})
}

const nginxConf = `server {
    listen       %d;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }
}
`

const nginxIndex = `<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1></body>
</html>
`

// nginxImage looks like nginx to critest: /usr/sbin/nginx (helpers/webserver.c)
// runs as "nginx: master process ...", writes /var/run/nginx.pid and serves
// /usr/share/nginx/html on port.
func nginxImage(port int, stopSignal string) func(*Builder, Format) (v1.Image, error) {
	return func(b *Builder, f Format) (v1.Image, error) {
		web, err := b.Helper("webserver")
		if err != nil {
			return nil, err
		}
		cfg := BusyboxConfig()
		cfg.Cmd = []string{"nginx", "-g", "daemon off;"}
		cfg.Env = append(cfg.Env, "NGINX_VERSION=1.14.2")
		cfg.ExposedPorts = map[string]struct{}{fmt.Sprintf("%d/tcp", port): {}}
		cfg.StopSignal = stopSignal
		return b.BusyboxImage(f, cfg, []File{
			Dir("etc/nginx", 0o755),
			Dir("etc/nginx/conf.d", 0o755),
			Reg("etc/nginx/conf.d/default.conf", 0o644, fmt.Sprintf(nginxConf, port)),
			Dir("usr/share/nginx", 0o755),
			Dir("usr/share/nginx/html", 0o755),
			Reg("usr/share/nginx/html/index.html", 0o644, nginxIndex),
			Dir("var/cache/nginx", 0o755),
			Dir("var/log/nginx", 0o755),
			Dir("var/run", 0o755),
			{Path: "usr/sbin/nginx", Mode: 0o755, Content: web},
		})
	}
}

// httpdImage stands in for e2e-test-images/httpd: httpd-foreground
// (helpers/webserver.c) logs a line with "httpd" and serves
// /usr/local/apache2/htdocs on port 80. Upstream's STOPSIGNAL SIGWINCH is
// left out: busybox httpd does not stop on it.
func httpdImage(b *Builder, f Format) (v1.Image, error) {
	web, err := b.Helper("webserver")
	if err != nil {
		return nil, err
	}
	cfg := BusyboxConfig()
	cfg.Env = []string{"PATH=/usr/local/apache2/bin:" + DefaultPath, "HTTPD_PREFIX=/usr/local/apache2"}
	cfg.Cmd = []string{"httpd-foreground"}
	cfg.WorkingDir = "/usr/local/apache2"
	cfg.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	return b.BusyboxImage(f, cfg, []File{
		Dir("usr/local", 0o755),
		Dir("usr/local/apache2", 0o755),
		Dir("usr/local/apache2/bin", 0o755),
		Dir("usr/local/apache2/htdocs", 0o755),
		Reg("usr/local/apache2/htdocs/index.html", 0o644, "<html><body><h1>It works!</h1></body></html>\n"),
		{Path: "usr/local/apache2/bin/httpd-foreground", Mode: 0o755, Content: web},
	})
}

// noNewPrivsImage runs /usr/local/bin/nnp, setuid root, which prints
// "Effective uid: N".
func noNewPrivsImage(b *Builder, f Format) (v1.Image, error) {
	nnp, err := b.Helper("nnp")
	if err != nil {
		return nil, err
	}
	cfg := BusyboxConfig()
	cfg.Cmd = []string{"/usr/local/bin/nnp"}
	return b.BusyboxImage(f, cfg, []File{
		Dir("usr/local", 0o755),
		Dir("usr/local/bin", 0o755),
		{Path: "usr/local/bin/nnp", Mode: 0o4755, Content: nnp},
	})
}

// pauseImage is like registry.k8s.io/pause:3.9: only /pause, run as
// 65535:65535.
func pauseImage(b *Builder, f Format) (v1.Image, error) {
	pause, err := b.Helper("pause")
	if err != nil {
		return nil, err
	}
	tarball, err := Tar([]File{{Path: "pause", Mode: 0o755, Content: pause}})
	if err != nil {
		return nil, err
	}
	l, err := NewLayer(tarball, f.LayerMediaType())
	if err != nil {
		return nil, err
	}
	return NewImage(f, v1.Config{
		Env:        []string{"PATH=" + DefaultPath},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
		WorkingDir: "/",
	}, l)
}

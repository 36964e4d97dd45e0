package pause

// RootfsOfSelf installs the Go fallback, this test binary run as pause, as Rootfs does
// on architectures without built-in machine code.
func RootfsOfSelf(dir string) (string, error) {
	img, err := selfImage()
	if err != nil {
		return "", err
	}
	return install(dir, img)
}

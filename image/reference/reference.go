package reference

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/berth-runtime/berth/internal/errdefs"
)

// DockerHub is the CRI's spelling of Docker Hub's registry.
const DockerHub = "docker.io"

// DefaultTag is the tag of a reference that names none.
const DefaultTag = "latest"

// maxNameLength bounds domain/path, as the distribution reference does.
const maxNameLength = 255

var (
	// One path component: lowercase alphanumerics separated by '.', '_', '__' or dashes.
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	// A domain: DNS labels separated by dots, or a bracketed IPv6 address, optional port.
	domainRE = regexp.MustCompile(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])` +
		`(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	tagRE    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	sha256RE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// Reference is a parsed, normalised image reference. Tag and Digest are never both set:
// when a reference names both, the digest wins and the tag is dropped.
type Reference struct {
	// Domain is the registry host[:port], "docker.io" for Docker Hub.
	Domain string
	// Path is the repository path inside the registry ("library/busybox").
	Path string
	// Tag is the tag ("latest" when the reference named neither tag nor digest).
	Tag string
	// Digest is "sha256:<hex>" for a digested reference.
	Digest string
}

// Parse parses and normalises s. Errors wrap errdefs.ErrInvalidArgument.
func Parse(s string) (Reference, error) {
	if s == "" {
		return Reference{}, invalid(s, "empty reference")
	}
	if _, ok := ParseID(s); ok {
		return Reference{}, invalid(s, "an image ID is not a reference")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return Reference{}, invalid(s, "contains whitespace")
	}
	parsed, err := name.ParseReference(s, name.WeakValidation)
	if err != nil {
		return Reference{}, invalid(s, err.Error())
	}
	repo := parsed.Context()
	r := Reference{Domain: repo.RegistryStr(), Path: repo.RepositoryStr()}
	if r.Domain == name.DefaultRegistry {
		r.Domain = DockerHub
	}
	switch p := parsed.(type) {
	case name.Tag:
		r.Tag = p.TagStr()
	case name.Digest:
		r.Digest = p.DigestStr()
	}
	if err := r.validate(); err != nil {
		return Reference{}, invalid(s, err.Error())
	}
	return r, nil
}

// Normalise returns the normalised spelling of s (Parse(s).String()).
func Normalise(s string) (string, error) {
	r, err := Parse(s)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

func (r Reference) validate() error {
	if !domainRE.MatchString(r.Domain) {
		return fmt.Errorf("invalid registry %q", r.Domain)
	}
	for _, c := range strings.Split(r.Path, "/") {
		if !pathComponent.MatchString(c) {
			return fmt.Errorf("invalid repository path %q: components must be lowercase letters, digits and separators", r.Path)
		}
	}
	if n := len(r.Name()); n > maxNameLength {
		return fmt.Errorf("repository name is %d characters long, at most %d allowed", n, maxNameLength)
	}
	if r.Tag != "" && !tagRE.MatchString(r.Tag) {
		return fmt.Errorf("invalid tag %q", r.Tag)
	}
	if r.Digest != "" && !sha256RE.MatchString(r.Digest) {
		return fmt.Errorf("unsupported digest %q: only sha256 with 64 lowercase hex digits", r.Digest)
	}
	return nil
}

// Name is the repository: "docker.io/library/busybox".
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String is the normalised reference: Name@Digest if digested, else Name:Tag.
func (r Reference) String() string {
	if r.Digest != "" {
		return r.Name() + "@" + r.Digest
	}
	return r.Name() + ":" + r.Tag
}

// Identifier is what the registry's manifests endpoint is asked for: the digest or the tag.
func (r Reference) Identifier() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// IsDigested reports whether the reference names content by digest.
func (r Reference) IsDigested() bool { return r.Digest != "" }

// WithDigest returns the digested reference to d in the same repository.
func (r Reference) WithDigest(d string) Reference {
	return Reference{Domain: r.Domain, Path: r.Path, Digest: d}
}

func invalid(s, why string) error {
	return errdefs.InvalidArgument(fmt.Sprintf("invalid image reference %q: %s", s, why))
}

// Package layering holds the test that keeps berth's imports flowing one way:
//
//	cmd -> cri -> sandbox / image / network -> leaf packages (internal/*, ...)
//
// Nothing but cmd/ (and hack/, integration/, which may import anything) imports cri;
// sandbox, image and network import no cmd or cri, and of each other only sandbox ->
// network; leaf packages import none of cri, sandbox, image or network. Within an area
// (sandbox/..., cri/...) packages import each other freely. Tests may also import the
// test tooling under hack/ and the *test helper packages (cnitest, runtimetest). A new
// arrow against this direction fails TestImportDirection; the fix is to move the code
// that needs it up (next to cmd/berthd, as cmd/wiring) or the shared type down into a
// leaf.
package layering

/*
 * nnp: installed setuid root in the nonewprivs test image. Prints the
 * effective uid, which stays the caller's when the container runs with
 * no_new_privs and becomes 0 when it does not.
 */
#include <stdio.h>
#include <unistd.h>

int main(void) {
	printf("Effective uid: %d\n", (int)geteuid());
	return 0;
}

/* The example package: a tiny program built inside Stockade's sandbox. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("Hello from a program built in a Stockade sandbox (built as uid %s).\n", BUILT_BY);
    return 0;
}

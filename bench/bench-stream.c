/* bench-stream: placeholder while the streaming benchmark is written */
#include <stdio.h>
int main(void)
{
    fprintf(stderr, "bench-stream: not written yet\n");
    return 1;
}

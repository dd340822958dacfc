/* A static no-op program: what the spawn benchmarks start, so that they
   measure the launch and not the dynamic loader. */
int main(void) { return 0; }

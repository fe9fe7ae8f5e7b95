/* bench.h — `ssmlab bench`: training and inference throughput of the engine
 * on fixed model shapes (and a scan-kernel micro-benchmark), printed as
 * CSV/JSONL rows comparable with bench/torch_baseline.py. */
#ifndef SSM_BENCH_H
#define SSM_BENCH_H

/* argv[0] is "bench".  Returns a sysexits.h code. */
int cli_bench(int argc, char **argv);

#endif

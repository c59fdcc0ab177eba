/*
 * Data and checkpoint files: IDX (MNIST format, plain or gzip), CSV tables,
 * safetensors checkpoints. (Filled by the data/checkpoint work.)
 */
#ifndef SL_IO_H
#define SL_IO_H

#endif

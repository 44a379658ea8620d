/* conform: runs one ONNX backend-test directory (model.onnx plus
 * test_data_set_N/input_K.pb, output_K.pb) and compares with ONNX's tolerances
 * (|got - want| <= 1e-7 + 1e-3 * |want|). Graph inputs after the first are bound
 * as constants (they are the weights in ONNX's node tests), so the same layers
 * run as with a real model's initializers. */
#ifndef ENGINE_CONFORM_H
#define ENGINE_CONFORM_H

/* Returns 0 pass, 1 fail, 2 skipped (the model needs something unsupported);
 * prints one line per directory (more with verbose). */
int ec_check_dir(const char *dir, int reference, int verbose);

#endif

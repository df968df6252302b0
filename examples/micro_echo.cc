// A TensorFlow Lite Micro app streaming the echo through an edge-echo micro step file.
//
// Build it inside a TFLM project (the tflite-micro source tree or a board SDK), with
// many_to_many_micro_step_model_data.h/.cc from `edge-echo export --c-array`. The header
// lists the operators and declares the arena size measured on TFLM; the contract is in
// manifest.json: batch 1, reset at the start of each sequence, one time step per Invoke().
#include <cstdio>

#include "many_to_many_micro_step_model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {
alignas(16) uint8_t tensor_arena[MANY_TO_MANY_MICRO_STEP_MODEL_DATA_ARENA_SIZE];
}  // namespace

int main() {
  const tflite::Model* model = tflite::GetModel(many_to_many_micro_step_model_data);
  tflite::MicroMutableOpResolver<2> resolver;  // the calls the header lists
  resolver.AddFullyConnected();
  resolver.AddUnidirectionalSequenceLSTM();
  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, sizeof(tensor_arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) return 1;

  const float sequence[] = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f};
  interpreter.Reset();  // the start of a sequence: h and c back to zero
  for (float value : sequence) {
    interpreter.input(0)->data.f[0] = value;  // one time step
    if (interpreter.Invoke() != kTfLiteOk) return 1;
    std::printf("in %.1f -> out %.1f\n", value, interpreter.output(0)->data.f[0]);
  }
  return 0;
}

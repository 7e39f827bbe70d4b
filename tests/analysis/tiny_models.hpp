#pragma once

// Small DNN models that tests write themselves, with weights chosen so that
// what they find on a synthetic frame is known in advance (no download, no
// training). Used by the in-process detect tests and the cluster test.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace framehive::testing {

/// The files of a written model.
struct tiny_model_files {
  std::string network;
  std::string weights;  ///< empty for ONNX
  std::string names;
};

/// Class names of the tiny models, in their class order.
inline const std::vector<std::string>& tiny_model_classes() {
  static const std::vector<std::string> names{"red_thing", "blue_thing"};
  return names;
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

inline void write_names(const std::string& path, const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names)
    text += n + "\n";
  write_text(path, text);
}

/// A Darknet YOLOv3-style model: [maxpool] of `cell` pixels, a 1x1
/// [convolutional] of 7 filters, a [yolo] layer with one anchor of
/// `cell` x `cell` pixels and the two classes of tiny_model_classes().
///
/// The weights make each cell an object detector for saturated red or blue:
/// with input channels (c0, c1, c2) after scaling,
///   objectness logit = 8 (c0 + c2) - 4, class logits = +-6 (c0 - c2),
/// box offsets 0. So with swapRB (c0 = red) and a 1/255 scale, a cell whose
/// maximum red is 255 on black gives one box exactly covering the cell, class
/// red_thing, confidence 0.98; a cell at half the scale (c0 = 0.5) gives 0.49,
/// below a 0.5 threshold; without swapRB red reads as blue. An input of
/// 2 x cell is a 2x2 grid, each cell a quadrant of the frame.
inline tiny_model_files write_darknet_model(const std::filesystem::path& dir, int cell, int input = 0) {
  if (input == 0)
    input = 2 * cell;
  std::filesystem::create_directories(dir);
  tiny_model_files f{(dir / "tiny.cfg").string(), (dir / "tiny.weights").string(), (dir / "tiny.names").string()};
  const std::string c = std::to_string(cell);
  write_text(f.network, "[net]\nwidth=" + std::to_string(input) + "\nheight=" + std::to_string(input) +
                            "\nchannels=3\n\n"
                            "[maxpool]\nsize=" + c + "\nstride=" + c + "\npadding=0\n\n"
                            "[convolutional]\nfilters=7\nsize=1\nstride=1\npad=0\nactivation=linear\n\n"
                            "[yolo]\nmask=0\nanchors=" + c + "," + c +
                            "\nclasses=2\nnum=1\nthresh=0.1\nnms_threshold=0.4\n");
  // Header: major 0, minor 2, revision 0, then 64 bits of "images seen".
  std::ofstream w(f.weights, std::ios::binary | std::ios::trunc);
  const int32_t header[3] = {0, 2, 0};
  const uint64_t seen = 0;
  w.write(reinterpret_cast<const char*>(header), sizeof(header));
  w.write(reinterpret_cast<const char*>(&seen), sizeof(seen));
  // Biases of the 7 filters: tx, ty, tw, th, objectness, red_thing, blue_thing.
  const float bias[7] = {0, 0, 0, 0, -4, 0, 0};
  // Weights: 7 filters x 3 input channels (1x1 kernels).
  const float weights[7][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {8, 0, 8}, {6, 0, -6}, {-6, 0, 6}};
  w.write(reinterpret_cast<const char*>(bias), sizeof(bias));
  w.write(reinterpret_cast<const char*>(weights), sizeof(weights));
  w.close();
  write_names(f.names, tiny_model_classes());
  return f;
}

// -- ONNX, written by hand: protobuf's wire format is small enough --------------------

namespace onnx_wire {

inline void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

/// A length-delimited field (wire type 2).
inline std::string field(int number, const std::string& bytes) {
  std::string out;
  varint(out, static_cast<uint64_t>(number) << 3 | 2);
  varint(out, bytes.size());
  return out + bytes;
}

/// A varint field (wire type 0).
inline std::string number(int number, uint64_t v) {
  std::string out;
  varint(out, static_cast<uint64_t>(number) << 3);
  varint(out, v);
  return out;
}

/// TensorProto: dims (1), data_type (2: 1 float, 7 int64), name (8), raw_data (9).
inline std::string tensor(const std::string& name, const std::vector<int64_t>& dims, int type,
                          const std::string& raw) {
  std::string t;
  for (auto d : dims)
    t += number(1, static_cast<uint64_t>(d));
  t += number(2, static_cast<uint64_t>(type));
  t += field(8, name);
  t += field(9, raw);
  return t;
}

inline std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

inline std::string int64s(const std::vector<int64_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
}

/// ValueInfoProto of a float tensor with fixed dims.
inline std::string value_info(const std::string& name, const std::vector<int64_t>& dims) {
  std::string shape;
  for (auto d : dims)
    shape += field(1, number(1, static_cast<uint64_t>(d)));  // Dimension.dim_value
  const std::string tensor_type = number(1, 1) + field(2, shape);  // elem_type float, shape
  return field(1, name) + field(2, field(1, tensor_type));         // name, TypeProto.tensor_type
}

/// AttributeProto of integers: name (1), ints (8), type (20: INTS = 7).
inline std::string ints_attribute(const std::string& name, const std::vector<int64_t>& values) {
  std::string a = field(1, name);
  for (auto v : values)
    a += number(8, static_cast<uint64_t>(v));
  return a + number(20, 7);
}

/// NodeProto: input (1), output (2), op_type (4), attribute (5).
inline std::string node(const std::vector<std::string>& inputs, const std::string& output, const std::string& op,
                        const std::vector<std::string>& attributes = {}) {
  std::string n;
  for (const auto& i : inputs)
    n += field(1, i);
  n += field(2, output);
  n += field(4, op);
  for (const auto& a : attributes)
    n += field(5, a);
  return n;
}

}  // namespace onnx_wire

/// An ONNX model with an SSD-style output [1, 1, 2, 7]: a Conv whose kernel
/// covers the whole `input` x `input` image (so only that input size fits),
/// reshaped into two detections [image, class, confidence, x1, y1, x2, y2].
/// Detection 0 is class 0 (red_thing) with confidence = the mean of input
/// channel 0 (red with swapRB and a 1/255 scale), box (0.25, 0.25)-(0.75,
/// 0.5); detection 1 is class 1 (blue_thing) with confidence = the mean of
/// channel 2, box (0, 0.5)-(0.5, 1).
inline tiny_model_files write_onnx_ssd_model(const std::filesystem::path& dir, int input) {
  using namespace onnx_wire;
  std::filesystem::create_directories(dir);
  tiny_model_files f{(dir / "tiny-ssd.onnx").string(), "", (dir / "tiny-ssd.names").string()};
  const int64_t area = static_cast<int64_t>(input) * input;
  const float mean_weight = 1.0f / static_cast<float>(area);
  // 14 output channels: 7 values of detection 0, then 7 of detection 1.
  std::vector<float> w(static_cast<std::size_t>(14 * 3 * area), 0.0f);
  auto set_mean_of = [&](int out_channel, int in_channel) {
    for (int64_t i = 0; i < area; ++i)
      w[static_cast<std::size_t>((out_channel * 3 + in_channel) * area + i)] = mean_weight;
  };
  set_mean_of(2, 0);      // detection 0's confidence: mean of channel 0
  set_mean_of(7 + 2, 2);  // detection 1's confidence: mean of channel 2
  const std::vector<float> b{0, 0, 0, 0.25f, 0.25f, 0.75f, 0.5f, 0, 1, 0, 0, 0.5f, 0.5f, 1};
  std::string graph;
  graph += field(1, node({"data", "W", "B"}, "conv", "Conv", {ints_attribute("kernel_shape", {input, input})}));
  graph += field(1, node({"conv", "shape"}, "detections", "Reshape"));
  graph += field(2, "tiny_ssd");
  graph += field(5, tensor("W", {14, 3, input, input}, 1, floats(w)));
  graph += field(5, tensor("B", {14}, 1, floats(b)));
  graph += field(5, tensor("shape", {4}, 7, int64s({1, 1, 2, 7})));
  graph += field(11, value_info("data", {1, 3, input, input}));
  graph += field(12, value_info("detections", {1, 1, 2, 7}));
  std::string model;
  model += number(1, 7);                                   // ir_version
  model += field(8, field(1, "") + number(2, 13));         // opset_import: default domain, version 13
  model += field(7, graph);
  write_text(f.network, model);
  write_names(f.names, tiny_model_classes());
  return f;
}

}  // namespace framehive::testing

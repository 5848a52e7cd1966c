// A fresh console program that uses MvqNative only through its NuGet package: trains a few steps, encodes,
// reconstructs, saves and loads. tools/package-test/run.sh builds it against a local folder feed.
using MvqNative;

var data = MvqImages.Load("fashion-mnist:test", 1, 28, 28, limit: 64);
using var model = MvqModel.Create(MvqRecipe.Preset("fmnist-vq"), "cpu", seed: 1);
var result = model.Train(data, new MvqTrainOptions { Steps = 3, Batch = 16 });
var codes = model.Encode(data.Pixels[..(4 * model.ImageSize)]);
var rec = model.Reconstruct(data.Pixels[..(4 * model.ImageSize)]);
var path = Path.Combine(Path.GetTempPath(), $"mvq-package-test-{Environment.ProcessId}.safetensors");
model.Save(path);
using var back = MvqModel.Load(path);
bool same = back.Reconstruct(data.Pixels[..(4 * model.ImageSize)]).AsSpan().SequenceEqual(rec);
File.Delete(path);
Console.WriteLine($"package consumer: trained {result.Step} steps (loss {result.Loss:F4}), encoded {codes.Count} images into {codes.Length} tokens each, reload {(same ? "identical" : "DIFFERENT")}");
return result.Step == 3 && codes.Count == 4 && same ? 0 : 1;

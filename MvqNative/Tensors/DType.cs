namespace MvqNative.Tensors;

/// <summary>Element type of a tensor. Both are 4 bytes, so buffers are typeless.</summary>
internal enum DType
{
    /// <summary>32-bit IEEE float: activations, parameters, gradients.</summary>
    F32,
    /// <summary>32-bit signed integer: code indices, winner indices, labels.</summary>
    I32,
}

// Typed exceptions of the bindings and one ThrowIfFailed per status type.
using System.Runtime.CompilerServices;

namespace MvqNative.Bindings;

/// <summary>A CUDA driver call failed.</summary>
public sealed class CudaException : Exception
{
    /// <summary>The status code.</summary>
    public CUresult Code { get; }
    /// <summary>Its name from cuGetErrorName, e.g. CUDA_ERROR_INVALID_VALUE.</summary>
    public string CodeName { get; }
    /// <summary>The failing call as written in the source.</summary>
    public string Call { get; }
    /// <summary>The emulator's own description of the failure (guard violations name the kernel), when running on it.</summary>
    public string? EmulatorDetail { get; }

    public CudaException(CUresult code, string codeName, string call, string? emulatorDetail = null)
        : base(Format(code, codeName, call, emulatorDetail))
    {
        Code = code; CodeName = codeName; Call = call; EmulatorDetail = emulatorDetail;
    }

    private static string Format(CUresult code, string name, string call, string? emu)
    {
        var text = CudaDriver.ErrorString(code);
        var s = $"{name} ({(int)code}){(text.Length > 0 ? ": " + text : "")} in {call}";
        return emu is null ? s : $"{s} [emulator: {emu}]";
    }
}

/// <summary>An NVRTC call failed; a failed compile carries the full program log.</summary>
public sealed class NvrtcException : Exception
{
    public NvrtcResult Code { get; }
    public string Call { get; }
    /// <summary>The program log (compiler diagnostics), empty when not a compile error.</summary>
    public string Log { get; }
    /// <summary>The program (file) name.</summary>
    public string Program { get; }
    /// <summary>The options passed to nvrtcCompileProgram.</summary>
    public IReadOnlyList<string> Options { get; }
    /// <summary>The target architecture, e.g. sm_80.</summary>
    public string Arch { get; }

    public NvrtcException(NvrtcResult code, string call, string program = "", string arch = "", IReadOnlyList<string>? options = null, string log = "")
        : base(Format(code, call, program, arch, options, log))
    {
        Code = code; Call = call; Program = program; Arch = arch; Options = options ?? []; Log = log;
    }

    private static string Format(NvrtcResult code, string call, string program, string arch, IReadOnlyList<string>? options, string log)
    {
        var s = $"{Nvrtc.ErrorName(code)} ({(int)code}) in {call}";
        if (program.Length > 0) s += $"; program {program}, arch {arch}, options [{string.Join(' ', options ?? [])}]";
        if (log.Length > 0) s += "\n" + log.TrimEnd();
        return s;
    }
}

/// <summary>A cuBLAS call failed.</summary>
public sealed class CublasException : Exception
{
    public CublasStatus Code { get; }
    public string Call { get; }

    public CublasException(CublasStatus code, string call)
        : base($"CUBLAS_STATUS_{code.ToString().ToUpperInvariant()} ({(int)code}) in {call}")
    {
        Code = code; Call = call;
    }
}

/// <summary>Status checks: <c>Check.Cu(CudaDriver.cuInit(0));</c> throws with the call text on failure.</summary>
public static class Check
{
    /// <summary>Throws <see cref="CudaException"/> unless <paramref name="r"/> is success.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Cu(CUresult r, [CallerArgumentExpression(nameof(r))] string call = "")
    {
        if (r != CUresult.Success) ThrowCu(r, call);
    }

    /// <summary>Throws <see cref="NvrtcException"/> unless <paramref name="r"/> is success.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Nvrtc(NvrtcResult r, [CallerArgumentExpression(nameof(r))] string call = "")
    {
        if (r != NvrtcResult.Success) throw new NvrtcException(r, call);
    }

    /// <summary>Throws <see cref="CublasException"/> unless <paramref name="r"/> is success.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Cublas(CublasStatus r, [CallerArgumentExpression(nameof(r))] string call = "")
    {
        if (r != CublasStatus.Success) throw new CublasException(r, call);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowCu(CUresult r, string call) =>
        throw new CudaException(r, CudaDriver.ErrorName(r), call, MvqEmu.LastError());
}

/// <summary>Extension form: <c>CudaDriver.cuInit(0).ThrowIfFailed();</c>.</summary>
public static class StatusExtensions
{
    public static void ThrowIfFailed(this CUresult r, [CallerArgumentExpression(nameof(r))] string call = "") => Check.Cu(r, call);
    public static void ThrowIfFailed(this NvrtcResult r, [CallerArgumentExpression(nameof(r))] string call = "") => Check.Nvrtc(r, call);
    public static void ThrowIfFailed(this CublasStatus r, [CallerArgumentExpression(nameof(r))] string call = "") => Check.Cublas(r, call);
}

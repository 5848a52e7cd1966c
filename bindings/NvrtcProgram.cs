// Managed face of one NVRTC compilation: source + named headers + options -> cubin or PTX.
using System.Runtime.InteropServices;
using System.Text;

namespace MvqNative.Bindings;

/// <summary>Output of a compile: a cubin, or NUL-terminated PTX text.</summary>
public sealed record NvrtcOutput(byte[] Image, bool IsCubin, string Log);

/// <summary>Compiles CUDA C++ with NVRTC.</summary>
public static unsafe class NvrtcProgram
{
    /// <summary>NVRTC's version as (major, minor).</summary>
    public static (int Major, int Minor) Version()
    {
        Check.Nvrtc(Nvrtc.nvrtcVersion(out var major, out var minor));
        return (major, minor);
    }

    /// <summary>Compute capabilities NVRTC can target, as numbers like 80 for sm_80.</summary>
    public static int[] SupportedArchs()
    {
        try
        {
            Check.Nvrtc(Nvrtc.nvrtcGetNumSupportedArchs(out var n));
            var a = new int[n];
            fixed (int* p = a) Check.Nvrtc(Nvrtc.nvrtcGetSupportedArchs(p));
            return a;
        }
        catch (EntryPointNotFoundException) { return []; } // NVRTC older than 11.2
    }

    /// <summary>Whether an NVRTC library loads on this machine.</summary>
    public static bool IsAvailable()
    {
        try { Version(); return true; }
        catch (DllNotFoundException) { return false; }
    }

    /// <summary>
    /// Compiles <paramref name="source"/> (program name <paramref name="name"/>) with
    /// <paramref name="headers"/> available to #include by name. <paramref name="cubin"/>
    /// selects reading the cubin (options must carry -arch=sm_XY) or the PTX.
    /// </summary>
    /// <exception cref="NvrtcException">Compile failed; carries the log, options and arch.</exception>
    public static NvrtcOutput Compile(string source, string name, IReadOnlyList<KeyValuePair<string, string>> headers,
        IReadOnlyList<string> options, string arch, bool cubin)
    {
        var pins = new List<IntPtr>();
        IntPtr Utf8(string s) { var p = Marshal.StringToCoTaskMemUTF8(s); pins.Add(p); return p; }
        try
        {
            var hdr = stackalloc byte*[Math.Max(1, headers.Count)];
            var inc = stackalloc byte*[Math.Max(1, headers.Count)];
            for (int i = 0; i < headers.Count; i++) { hdr[i] = (byte*)Utf8(headers[i].Value); inc[i] = (byte*)Utf8(headers[i].Key); }
            var opts = stackalloc byte*[Math.Max(1, options.Count)];
            for (int i = 0; i < options.Count; i++) opts[i] = (byte*)Utf8(options[i]);

            Check.Nvrtc(Nvrtc.nvrtcCreateProgram(out var raw, (byte*)Utf8(source), (byte*)Utf8(name), headers.Count, hdr, inc));
            using var prog = NvrtcProgramHandle.Wrap(raw);
            var rc = Nvrtc.nvrtcCompileProgram(raw, options.Count, opts);
            var log = ReadLog(raw);
            if (rc != NvrtcResult.Success)
                throw new NvrtcException(rc, "nvrtcCompileProgram", name, arch, options.ToArray(), log);

            byte[] image;
            if (cubin)
            {
                Check.Nvrtc(Nvrtc.nvrtcGetCUBINSize(raw, out var size));
                image = new byte[(int)size];
                fixed (byte* p = image) Check.Nvrtc(Nvrtc.nvrtcGetCUBIN(raw, p));
            }
            else
            {
                Check.Nvrtc(Nvrtc.nvrtcGetPTXSize(raw, out var size)); // includes the NUL terminator
                image = new byte[(int)size];
                fixed (byte* p = image) Check.Nvrtc(Nvrtc.nvrtcGetPTX(raw, p));
            }
            return new NvrtcOutput(image, cubin, log);
        }
        finally
        {
            foreach (var p in pins) Marshal.FreeCoTaskMem(p);
        }
    }

    private static string ReadLog(IntPtr prog)
    {
        if (Nvrtc.nvrtcGetProgramLogSize(prog, out var size) != NvrtcResult.Success || size <= 1) return "";
        var buf = new byte[(int)size];
        fixed (byte* p = buf) if (Nvrtc.nvrtcGetProgramLog(prog, p) != NvrtcResult.Success) return "";
        return Encoding.UTF8.GetString(buf, 0, buf.Length - 1);
    }
}

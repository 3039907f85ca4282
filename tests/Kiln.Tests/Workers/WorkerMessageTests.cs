using System.Text;
using Kiln.Workers;

namespace Kiln.Tests.Workers;

/// <summary>The pure checks of the worker protocol: binding and validation without a server.</summary>
public sealed class WorkerMessageTests
{
    [Theory]
    [InlineData("out.jpg", true)]
    [InlineData("hls/720p/seg-001.ts", true)]
    [InlineData("", false)]
    [InlineData("/etc/passwd", false)]
    [InlineData("../up.txt", false)]
    [InlineData("a/../../b", false)]
    [InlineData("a//b", false)]
    [InlineData("a/./b", false)]
    [InlineData("a\\b", false)]
    [InlineData("c:x", false)]
    [InlineData("bad\u0001name", false)]
    public void Output_paths_must_stay_inside_the_output_directory(string path, bool safe) =>
        Assert.Equal(safe, WorkerProtocol.IsSafeRelativePath(path));

    [Fact]
    public void A_message_missing_a_required_field_does_not_bind()
    {
        Assert.Null(Bind<ProgressMessage>("""{"type":"progress","jobId":"01a1fd4d-aff3-701a-87ce-0360e4dee4a7","progress":5}"""));
        Assert.Null(Bind<FailMessage>("""{"type":"fail","jobId":"01a1fd4d-aff3-701a-87ce-0360e4dee4a7","leaseId":"01a1fd4d-aff3-701a-87ce-0360e4dee4a7","errorCode":null,"message":"x"}"""));
        Assert.NotNull(Bind<ProgressMessage>("""{"type":"progress","jobId":"01a1fd4d-aff3-701a-87ce-0360e4dee4a7","leaseId":"01a1fd4d-aff3-701a-87ce-0360e4dee4a7","progress":5}"""));
    }

    [Fact]
    public void Reading_a_message_needs_an_object_with_a_string_type()
    {
        Assert.Equal("malformed", WorkerProtocol.Read(Encoding.UTF8.GetBytes("""{"type":3}""")).Error);
        Assert.Equal("malformed", WorkerProtocol.Read(Encoding.UTF8.GetBytes("""{"typ""")).Error);
        var (document, type, error) = WorkerProtocol.Read(Encoding.UTF8.GetBytes("""{"type":"heartbeat"}"""));
        using (document)
        {
            Assert.Equal("heartbeat", type);
            Assert.Null(error);
        }
    }

    [Theory]
    [InlineData(0, null)]
    [InlineData(100, null)]
    [InlineData(100.01, "progress_out_of_range")]
    [InlineData(-0.5, "progress_out_of_range")]
    [InlineData(double.NaN, "progress_out_of_range")]
    public void Progress_must_be_a_number_from_0_to_100(double progress, string? error) =>
        Assert.Equal(error, WorkerProtocol.Validate(new ProgressMessage("progress", Guid.Empty, Guid.Empty, progress)));

    [Fact]
    public void Two_outputs_of_the_same_type_and_variant_are_refused()
    {
        var complete = new CompleteMessage("complete", Guid.Empty, Guid.Empty, Outputs:
        [
            new OutputMessage("THUMBNAIL", "a.jpg", "image/jpeg"),
            new OutputMessage("THUMBNAIL", "b.jpg", "image/jpeg"),
        ]);

        Assert.Equal("duplicate_output", WorkerProtocol.Validate(complete, 10));
        Assert.Equal("too_many_outputs", WorkerProtocol.Validate(complete, 1));
    }

    [Theory]
    [InlineData("gpu-1", 4, 1, null)]
    [InlineData("gpu 1", 4, 1, "name")]
    [InlineData("gpu-1", 0, 1, "slots")]
    [InlineData("gpu-1", 4, 2, "protocol")]
    public void A_hello_names_a_plain_name_a_slot_count_in_range_and_this_protocol(string name, int slots, int protocol, string? complaint)
    {
        var error = WorkerProtocol.Validate(new HelloMessage("hello", name, "1.0", ["probe"], slots, protocol), maxSlots: 64);

        if (complaint is null)
        {
            Assert.Null(error);
        }
        else
        {
            Assert.Contains(complaint, error, StringComparison.Ordinal);
        }
    }

    private static T? Bind<T>(string json)
        where T : class
    {
        var (document, _, _) = WorkerProtocol.Read(Encoding.UTF8.GetBytes(json));
        using (document)
        {
            return WorkerProtocol.Bind<T>(document!.RootElement);
        }
    }
}

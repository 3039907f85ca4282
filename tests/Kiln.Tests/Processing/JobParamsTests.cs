using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Media.Images;
using Kiln.Pipelines;
using Kiln.Processing;
using Kiln.Transcription;

namespace Kiln.Tests.Processing;

/// <summary>The per-kind params readers and the <see cref="JobParams"/> wrapper they read through.</summary>
public sealed class JobParamsTests
{
    [Fact]
    public void A_value_out_of_range_is_refused_naming_the_param_its_range_and_the_value()
    {
        var e = Assert.Throws<JobParamsException>(() => JobParams.Read(Json("""{"quality":500}"""), ImageOptimizeHandler.ReadParams));
        Assert.Equal("quality", e.Key);
        Assert.Equal("param 'quality' must be a whole number from 1 to 100 (got 500).", e.Message);
    }

    [Fact]
    public void A_key_the_reader_does_not_read_is_refused_and_the_known_keys_are_listed()
    {
        var e = Assert.Throws<JobParamsException>(() => JobParams.Read(Json("""{"qualty":80}"""), ImageOptimizeHandler.ReadParams));
        Assert.Equal("qualty", e.Key);
        Assert.Equal("unknown param 'qualty'; its params are format, quality, maxWidth, maxHeight.", e.Message);
    }

    [Fact]
    public void Good_values_become_the_handler_settings_and_absent_ones_their_defaults()
    {
        var options = JobParams.Read(Json("""{"format":"webp","quality":55,"maxWidth":100}"""), ImageOptimizeHandler.ReadParams);
        Assert.Equal((ImageOutputFormat.Webp, 55, (int?)100, (int?)null), (options.Format, options.Quality, options.MaxWidth, options.MaxHeight));

        var defaults = JobParams.Read(null, ImageOptimizeHandler.ReadParams);
        Assert.Equal((ImageOutputFormat.Auto, 80), (defaults.Format, defaults.Quality));
    }

    [Theory]
    [InlineData("""{"sizes":[{"name":"a","width":10,"height":10},{"name":"b","height":10}]}""", "sizes[1].width", "param 'sizes[1].width' is required.")]
    [InlineData("""{"sizes":[{"name":"a","width":10,"height":10,"colour":"red"}]}""", "sizes[0].colour", "unknown param 'sizes[0].colour'; its params are name, width, height, fit, format, quality.")]
    [InlineData("""{"sizes":[{"name":"a","width":10,"height":10},{"name":"A","width":20,"height":20}]}""", "sizes", "param 'sizes' must have unique names.")]
    [InlineData("""{"sizes":[]}""", "sizes", "param 'sizes' must be an array of 1 to 10 objects (got []).")]
    [InlineData("""{"sizes":[{"name":"a b","width":10,"height":10}]}""", "sizes[0].name", "param 'sizes[0].name' must be 1–32 letters, digits, '-' or '_' (got \"a b\").")]
    public void Thumbnail_sizes_are_checked_item_by_item_with_the_item_named(string json, string key, string message)
    {
        var e = Assert.Throws<JobParamsException>(() => JobParams.Read(Json(json), ImageThumbnailsHandler.ReadParams));
        Assert.Equal((key, message), (e.Key, e.Message));
    }

    [Fact]
    public void Thumbnail_sizes_are_read_upper_cased_with_their_defaults()
    {
        var specs = JobParams.Read(Json("""{"sizes":[{"name":"tiny","width":40,"height":30,"fit":"cover"}]}"""), ImageThumbnailsHandler.ReadParams);
        var tiny = Assert.Single(specs);
        Assert.Equal(new ThumbnailSpec("TINY", 40, 30, ThumbnailFit.Cover, ImageOutputFormat.Jpeg, 80), tiny);
        Assert.Same(ThumbnailSpec.Defaults, JobParams.Read([], ImageThumbnailsHandler.ReadParams));
    }

    [Theory]
    [InlineData("""{"bits":12}""", "bits", "param 'bits' must be one of 8, 16 (got 12).")]
    [InlineData("""{"points":2.5}""", "points", "param 'points' must be a whole number from 10 to 100000 (got 2.5).")]
    public void Waveform_params_are_checked(string json, string key, string message)
    {
        var e = Assert.Throws<JobParamsException>(() => JobParams.Read(Json(json), WaveformHandler.ReadParams));
        Assert.Equal((key, message), (e.Key, e.Message));
        Assert.Equal(16, JobParams.Read(Json("""{"bits":16}"""), WaveformHandler.ReadParams).Bits);
    }

    [Fact]
    public void Transcribe_takes_a_language_code_and_a_flag()
    {
        var e = Assert.Throws<JobParamsException>(() => JobParams.Read(Json("""{"language":"English"}"""), TranscribeHandler.ReadParams));
        Assert.Equal("param 'language' must be an ISO-639-1 code such as 'en' (got \"English\").", e.Message);
        Assert.Equal(new TranscribeParams("de", true), JobParams.Read(Json("""{"language":"de","replaceManual":true}"""), TranscribeHandler.ReadParams));
    }

    [Fact]
    public void A_kind_without_params_refuses_every_key()
    {
        var e = Assert.Throws<JobParamsException>(() => JobParams.Read(Json("""{"deep":true}"""), JobParams.None));
        Assert.Equal("unknown param 'deep'; it takes no params.", e.Message);
    }

    [Fact]
    public void The_kind_names_itself_in_the_message_the_planner_returns()
    {
        var kind = new JobKindInfo("image.optimize", "image", 10, Params: ImageOptimizeHandler.ReadParams);
        Assert.Equal("Job kind 'image.optimize': param 'format' must be one of auto, jpeg, webp, avif, png (got \"gif\").", kind.CheckParams(Json("""{"format":"gif"}""")));
        Assert.Null(kind.CheckParams(Json("""{"format":"png"}""")));
        Assert.Null(new JobKindInfo("test.free", "test", 10).CheckParams(Json("""{"anything":1}""")));
    }

    [Fact]
    public void Describe_lists_each_param_with_its_type_range_and_default_including_array_items()
    {
        Assert.Equal(
            [
                new ParamInfo("format", "string", "auto, jpeg, webp, avif, png", "auto"),
                new ParamInfo("quality", "integer", "1–100", "80"),
                new ParamInfo("maxWidth", "integer", "1–100000", null),
                new ParamInfo("maxHeight", "integer", "1–100000", null),
            ],
            JobParams.Describe(ImageOptimizeHandler.ReadParams));
        var thumbnails = JobParams.Describe(ImageThumbnailsHandler.ReadParams);
        Assert.Equal(["sizes", "sizes[].name", "sizes[].width", "sizes[].height", "sizes[].fit", "sizes[].format", "sizes[].quality"], thumbnails.Select(p => p.Name));
        Assert.Equal(new ParamInfo("sizes[].width", "integer", "1–10000", "required"), thumbnails[2]);
        Assert.Empty(JobParams.Describe(JobParams.None));
    }

    [Fact]
    public void A_bad_value_that_reached_the_queue_anyway_fails_the_job_with_params_invalid_not_retried()
    {
        var context = new JobContext
        {
            Lease = new Kiln.Queue.JobLease
            {
                JobId = Guid.NewGuid(),
                LeaseId = Guid.NewGuid(),
                Kind = "image.optimize",
                Queue = "image",
                Attempt = 1,
                MaxAttempts = 3,
                LeaseExpiresAt = DateTimeOffset.UnixEpoch,
                Params = Json("""{"quality":0}"""),
            },
            Directories = new JobDirectories(Path.GetTempPath(), Guid.NewGuid(), Guid.NewGuid()),
            Progress = new Progress<JobProgress>(),
        };
        var e = Assert.Throws<JobFailedException>(() => context.ReadParams(ImageOptimizeHandler.ReadParams));
        Assert.Equal(("params.invalid", false, "param 'quality' must be a whole number from 1 to 100 (got 0)."), (e.ErrorCode, e.Retryable, e.Message));
    }

    private static JsonObject Json(string json) => JsonNode.Parse(json)!.AsObject();
}

using Kiln.Media.Transcription;

namespace Kiln.Tests.Transcription;

/// <summary>Pure pieces: pocketsphinx output parsing, segment grouping and stitching, cue formats.</summary>
public sealed class TranscriptFormatTests
{
    /// <summary>Captured from <c>pocketsphinx_continuous -infile rms16.wav -time yes -logfn /dev/null</c> (Debian 0.8) on flite's rms voice.</summary>
    private const string Captured = """
        the quick brown fox jumped over the lazy dog please call me tomorrow morning
        <s> 0.070 0.110 0.999700
        the 0.120 0.340 0.879752
        quick 0.350 0.640 0.994216
        brown 0.650 1.100 0.999800
        fox 1.110 1.500 0.999800
        jumped 1.510 2.000 0.110686
        over 2.010 2.290 0.999900
        the(2) 2.300 2.400 0.999600
        <sil> 2.400 3.300 1.000000
        [NOISE] 3.300 3.310 1.000000
        lazy 3.310 3.830 0.909909
        dog 3.840 4.260 0.997104
        </s> 4.270 4.400 1.000000
        """;

    [Fact]
    public void Pocketsphinx_output_yields_words_with_times_without_fillers_or_alternate_marks()
    {
        var words = PocketsphinxOutput.ParseWords(Captured);
        Assert.Equal(["the", "quick", "brown", "fox", "jumped", "over", "the", "lazy", "dog"], words.Select(w => w.Word).ToArray());
        Assert.Equal(0.12, words[0].Start);
        Assert.Equal(0.34, words[0].End);
        Assert.Equal(4.26, words[^1].End);
    }

    [Fact]
    public void Words_group_into_segments_at_pauses_and_chunks_stitch_onto_the_media_clock()
    {
        var segments = Segments.FromWords(PocketsphinxOutput.ParseWords(Captured));
        Assert.Equal(2, segments.Count);
        Assert.Equal(new TranscriptSegment(0.12, 2.4, "the quick brown fox jumped over the"), segments[0]);
        Assert.Equal(new TranscriptSegment(3.31, 4.26, "lazy dog"), segments[1]);

        var stitched = Segments.Stitch([(0, segments), (600, [new TranscriptSegment(1, 2.5, " later ")])], duration: 602);
        Assert.Equal(3, stitched.Count);
        Assert.Equal(new TranscriptSegment(601, 602, "later"), stitched[2]);
        Assert.Equal("the quick brown fox jumped over the lazy dog later", Segments.JoinText(stitched));
    }

    [Fact]
    public void Vtt_and_srt_cues_use_their_own_time_formats()
    {
        IReadOnlyList<TranscriptSegment> segments = [new(0.12, 2.4, "hello"), new(3661.5, 3661.5, "a --> b\n\nc")];
        Assert.Equal(
            "WEBVTT\n\n1\n00:00:00.120 --> 00:00:02.400\nhello\n\n2\n01:01:01.500 --> 01:01:01.501\na -> b\nc\n\n",
            SubtitleWriter.ToVtt(segments));
        Assert.Equal(
            "1\n00:00:00,120 --> 00:00:02,400\nhello\n\n2\n01:01:01,500 --> 01:01:01,501\na --> b\nc\n\n",
            SubtitleWriter.ToSrt(segments));
    }

    [Fact]
    public void A_25_megabyte_cap_cuts_16_khz_mono_into_chunks_of_about_13_minutes()
    {
        Assert.Equal(819, SpeechAudio.ChunkSeconds(25L * 1024 * 1024));
        Assert.Null(SpeechAudio.ChunkSeconds(null));
    }
}

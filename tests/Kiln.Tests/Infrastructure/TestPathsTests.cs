namespace Kiln.Tests.Infrastructure;

public sealed class TestPathsTests
{
    [Fact]
    public void The_shared_corpus_is_found_beside_the_repository()
    {
        Assert.True(File.Exists(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")), TestPaths.Corpus);
    }
}

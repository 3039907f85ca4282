Console.WriteLine("usage: dotnet run --project bench/Kiln.Bench -c Release -- <benchmark>");
return 2;

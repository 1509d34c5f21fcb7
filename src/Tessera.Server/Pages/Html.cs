using System.Text;
using System.Text.Encodings.Web;

namespace Tessera.Server.Pages;

/// <summary>Server-rendered pages: every value HTML-encoded, no script, readable on a phone.</summary>
public static class Html
{
    public static string E(string? value) => HtmlEncoder.Default.Encode(value ?? "");

    public static IResult Page(string title, string body, int status = 200)
    {
        var html = new StringBuilder()
            .Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Append("<title>").Append(E(title)).Append(" · Tessera</title><style>")
            .Append("body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}")
            .Append("label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}")
            .Append("button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem}.error{color:#b00020}ul{padding-left:1.2rem}")
            .Append("table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd;font-size:.9rem}")
            .Append("</style></head><body><h1>").Append(E(title)).Append("</h1>").Append(body).Append("</body></html>")
            .ToString();
        return Results.Content(html, "text/html; charset=utf-8", Encoding.UTF8, status);
    }

    public static string Hidden(string name, string? value) => $"<input type=\"hidden\" name=\"{E(name)}\" value=\"{E(value)}\">";

    /// <summary>An error page for requests that must not be redirected (unknown client, bad redirect_uri).</summary>
    public static IResult Error(string message, int status = 400) =>
        Page("Request refused", $"<p class=\"error\">{E(message)}</p><p>The application that sent you here is misconfigured. No data was shared with it.</p>", status);

    /// <summary>Only local paths may be a return target: "/x" but not "//host" or "/\host".</summary>
    public static bool IsLocalUrl(string? url) =>
        !string.IsNullOrEmpty(url) && url[0] == '/' && (url.Length == 1 || (url[1] != '/' && url[1] != '\\')) && !url.Any(char.IsControl);
}

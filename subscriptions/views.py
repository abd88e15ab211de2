from django.http import HttpResponse


def signup(request):
    # Placeholder until the Subscriptions issue lands.
    return HttpResponse("Paperboy")


def ratelimited(request, exception):
    return HttpResponse("Too many requests; please try again later.", status=429)
